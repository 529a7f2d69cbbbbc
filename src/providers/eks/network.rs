//! Networking for `vpc.create` on aws-sdk-ec2 (I/O): VPC, internet gateway, one public and one
//! private subnet per zone, a public route table. Everything carries the owner's tags and is found
//! again by them, so an interrupted creation or deletion resumes where it stopped.

use std::collections::BTreeMap;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, ResourceType, Subnet, Tag, TagSpecification,
};

use super::sdk::classify;
use super::{AwsError, AwsResult, ErrorKind, Network, NetworkRequest, OWNER_TAG, plan};

/// Tag telling mk8's public and private subnets apart.
const SUBNET_TAG: &str = "mk8.io/subnet";
/// Tag of the public route table.
const ROUTE_TABLE_TAG: &str = "mk8.io/route-table";

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn tagged(kind: ResourceType, tags: &BTreeMap<String, String>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

fn with(tags: &BTreeMap<String, String>, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut all = tags.clone();
    all.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    all
}

fn tag_of<'a>(subnet: &'a Subnet, key: &str) -> Option<&'a str> {
    subnet
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

async fn owned_vpc(ec2: &Client, owner_uid: &str) -> AwsResult<Option<String>> {
    let out = ec2
        .describe_vpcs()
        .filters(filter(&format!("tag:{OWNER_TAG}"), owner_uid))
        .send()
        .await
        .map_err(classify)?;
    Ok(out
        .vpcs()
        .iter()
        .find_map(|v| v.vpc_id())
        .map(str::to_string))
}

async fn subnets(ec2: &Client, vpc: &str) -> AwsResult<Vec<Subnet>> {
    Ok(ec2
        .describe_subnets()
        .filters(filter("vpc-id", vpc))
        .send()
        .await
        .map_err(classify)?
        .subnets()
        .to_vec())
}

fn network_of(vpc: &str, subnets: &[Subnet]) -> Network {
    let mut sorted: Vec<&Subnet> = subnets.iter().collect();
    sorted.sort_by_key(|s| s.availability_zone().unwrap_or_default().to_string());
    let ids = |kind: &str| -> Vec<String> {
        sorted
            .iter()
            .filter(|s| tag_of(s, SUBNET_TAG) == Some(kind))
            .filter_map(|s| s.subnet_id())
            .map(str::to_string)
            .collect()
    };
    Network {
        vpc_id: vpc.to_string(),
        public_subnets: ids("public"),
        private_subnets: ids("private"),
    }
}

/// Find or create everything of `request`.
pub async fn ensure(ec2: &Client, request: &NetworkRequest) -> AwsResult<Network> {
    let owner = request.tags.get(OWNER_TAG).cloned().unwrap_or_default();
    let cidrs = plan::subnet_cidrs(&request.cidr, request.zones).ok_or_else(|| {
        AwsError::new(
            ErrorKind::Invalid,
            "InvalidCidr",
            format!(
                "cannot split {} into {} public and private subnets",
                request.cidr, request.zones
            ),
        )
    })?;
    let vpc = match owned_vpc(ec2, &owner).await? {
        Some(vpc) => vpc,
        None => {
            let out = ec2
                .create_vpc()
                .cidr_block(&request.cidr)
                .tag_specifications(tagged(ResourceType::Vpc, &request.tags))
                .send()
                .await
                .map_err(classify)?;
            out.vpc()
                .and_then(|v| v.vpc_id())
                .unwrap_or_default()
                .to_string()
        }
    };
    ec2.modify_vpc_attribute()
        .vpc_id(&vpc)
        .enable_dns_hostnames(AttributeBooleanValue::builder().value(true).build())
        .send()
        .await
        .map_err(classify)?;
    let gateways = ec2
        .describe_internet_gateways()
        .filters(filter("attachment.vpc-id", &vpc))
        .send()
        .await
        .map_err(classify)?;
    let gateway = match gateways
        .internet_gateways()
        .iter()
        .find_map(|g| g.internet_gateway_id())
    {
        Some(id) => id.to_string(),
        None => {
            let created = ec2
                .create_internet_gateway()
                .tag_specifications(tagged(ResourceType::InternetGateway, &request.tags))
                .send()
                .await
                .map_err(classify)?;
            let id = created
                .internet_gateway()
                .and_then(|g| g.internet_gateway_id())
                .unwrap_or_default()
                .to_string();
            ec2.attach_internet_gateway()
                .internet_gateway_id(&id)
                .vpc_id(&vpc)
                .send()
                .await
                .map_err(classify)?;
            id
        }
    };
    let zones_out = ec2
        .describe_availability_zones()
        .send()
        .await
        .map_err(classify)?;
    let mut zones: Vec<String> = zones_out
        .availability_zones()
        .iter()
        .filter(|z| z.state().is_none_or(|s| s.as_str() == "available"))
        .filter_map(|z| z.zone_name())
        .map(str::to_string)
        .collect();
    zones.sort();
    if zones.len() < request.zones {
        return Err(AwsError::new(
            ErrorKind::Invalid,
            "NotEnoughZones",
            format!(
                "the region has {} availability zones, vpc.create.availabilityZones asks for {}",
                zones.len(),
                request.zones
            ),
        ));
    }
    let existing = subnets(ec2, &vpc).await?;
    for (zone, (public, private)) in zones.iter().zip(&cidrs) {
        for (cidr, kind, role) in [
            (public, "public", "kubernetes.io/role/elb"),
            (private, "private", "kubernetes.io/role/internal-elb"),
        ] {
            if existing
                .iter()
                .any(|s| s.cidr_block() == Some(cidr.as_str()))
            {
                continue;
            }
            let created = ec2
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block(cidr)
                .availability_zone(zone)
                .tag_specifications(tagged(
                    ResourceType::Subnet,
                    &with(&request.tags, &[(SUBNET_TAG, kind), (role, "1")]),
                ))
                .send()
                .await
                .map_err(classify)?;
            if kind == "public"
                && let Some(id) = created.subnet().and_then(|s| s.subnet_id())
            {
                ec2.modify_subnet_attribute()
                    .subnet_id(id)
                    .map_public_ip_on_launch(AttributeBooleanValue::builder().value(true).build())
                    .send()
                    .await
                    .map_err(classify)?;
            }
        }
    }
    let network = network_of(&vpc, &subnets(ec2, &vpc).await?);
    let tables = ec2
        .describe_route_tables()
        .filters(filter("vpc-id", &vpc))
        .filters(filter(&format!("tag:{ROUTE_TABLE_TAG}"), "public"))
        .send()
        .await
        .map_err(classify)?;
    let (table, associated): (String, Vec<String>) = match tables.route_tables().first() {
        Some(t) => (
            t.route_table_id().unwrap_or_default().to_string(),
            t.associations()
                .iter()
                .filter_map(|a| a.subnet_id())
                .map(str::to_string)
                .collect(),
        ),
        None => {
            let created = ec2
                .create_route_table()
                .vpc_id(&vpc)
                .tag_specifications(tagged(
                    ResourceType::RouteTable,
                    &with(&request.tags, &[(ROUTE_TABLE_TAG, "public")]),
                ))
                .send()
                .await
                .map_err(classify)?;
            let id = created
                .route_table()
                .and_then(|t| t.route_table_id())
                .unwrap_or_default()
                .to_string();
            ec2.create_route()
                .route_table_id(&id)
                .destination_cidr_block("0.0.0.0/0")
                .gateway_id(&gateway)
                .send()
                .await
                .map_err(classify)?;
            (id, Vec::new())
        }
    };
    for subnet in &network.public_subnets {
        if !associated.contains(subnet) {
            ec2.associate_route_table()
                .route_table_id(&table)
                .subnet_id(subnet)
                .send()
                .await
                .map_err(classify)?;
        }
    }
    Ok(network)
}

/// The network of `owner_uid`, if it exists.
pub async fn find(ec2: &Client, owner_uid: &str) -> AwsResult<Option<Network>> {
    match owned_vpc(ec2, owner_uid).await? {
        None => Ok(None),
        Some(vpc) => Ok(Some(network_of(&vpc, &subnets(ec2, &vpc).await?))),
    }
}

/// Delete the network of `owner_uid`; a dependency still in use (EKS network interfaces linger
/// for minutes after a cluster is gone) comes back as [`ErrorKind::InUse`] to be retried.
pub async fn delete(ec2: &Client, owner_uid: &str) -> AwsResult<()> {
    let Some(vpc) = owned_vpc(ec2, owner_uid).await? else {
        return Ok(());
    };
    let tables = ec2
        .describe_route_tables()
        .filters(filter("vpc-id", &vpc))
        .send()
        .await
        .map_err(classify)?;
    for table in tables.route_tables() {
        if table.associations().iter().any(|a| a.main() == Some(true)) {
            continue;
        }
        for association in table.associations() {
            if let Some(id) = association.route_table_association_id() {
                ec2.disassociate_route_table()
                    .association_id(id)
                    .send()
                    .await
                    .map_err(classify)?;
            }
        }
        if let Some(id) = table.route_table_id() {
            ec2.delete_route_table()
                .route_table_id(id)
                .send()
                .await
                .map_err(classify)?;
        }
    }
    for subnet in subnets(ec2, &vpc).await? {
        if let Some(id) = subnet.subnet_id() {
            ec2.delete_subnet()
                .subnet_id(id)
                .send()
                .await
                .map_err(classify)?;
        }
    }
    let gateways = ec2
        .describe_internet_gateways()
        .filters(filter("attachment.vpc-id", &vpc))
        .send()
        .await
        .map_err(classify)?;
    for gateway in gateways.internet_gateways() {
        if let Some(id) = gateway.internet_gateway_id() {
            ec2.detach_internet_gateway()
                .internet_gateway_id(id)
                .vpc_id(&vpc)
                .send()
                .await
                .map_err(classify)?;
            ec2.delete_internet_gateway()
                .internet_gateway_id(id)
                .send()
                .await
                .map_err(classify)?;
        }
    }
    ec2.delete_vpc()
        .vpc_id(&vpc)
        .send()
        .await
        .map_err(classify)?;
    Ok(())
}
