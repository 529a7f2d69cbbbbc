//! Decoding of the Kubernetes protobuf envelope for the few built-in kinds kubectl sends as
//! protobuf (`kubectl create configmap|secret|namespace|serviceaccount`, `kubectl drain`'s
//! evictions, typed DeleteOptions). Everything else arrives as JSON or YAML.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::status::{ApiError, ApiResult};

/// Prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8] = b"k8s\0";

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(buf: &[u8], pos: &mut usize) -> ApiResult<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos).ok_or_else(|| bad("truncated varint"))?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(bad("varint too long"))
}

fn bad(what: &str) -> ApiError {
    ApiError::BadRequest(format!("invalid protobuf body: {what}"))
}

fn fields(buf: &[u8]) -> ApiResult<Vec<(u64, Wire<'_>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let value = match key & 7 {
            0 => Wire::Varint(varint(buf, &mut pos)?),
            1 | 5 => {
                pos += if key & 7 == 1 { 8 } else { 4 };
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| bad("length"))?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or_else(|| bad("truncated field"))?;
                let bytes = &buf[pos..end];
                pos = end;
                Wire::Bytes(bytes)
            }
            _ => return Err(bad("unsupported wire type")),
        };
        out.push((key >> 3, value));
    }
    Ok(out)
}

/// How a field maps to JSON.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Int,
    Time,
    Msg(&'static [Field]),
    MapStr,
    MapBytes,
    RepStr,
    RepMsg(&'static [Field]),
}

type Field = (u64, &'static str, Kind);

const OWNER_REF: &[Field] = &[
    (1, "kind", Kind::Str),
    (3, "name", Kind::Str),
    (4, "uid", Kind::Str),
    (5, "apiVersion", Kind::Str),
    (6, "controller", Kind::Bool),
    (7, "blockOwnerDeletion", Kind::Bool),
];
const OBJECT_META: &[Field] = &[
    (1, "name", Kind::Str),
    (2, "generateName", Kind::Str),
    (3, "namespace", Kind::Str),
    (5, "uid", Kind::Str),
    (6, "resourceVersion", Kind::Str),
    (7, "generation", Kind::Int),
    (8, "creationTimestamp", Kind::Time),
    (11, "labels", Kind::MapStr),
    (12, "annotations", Kind::MapStr),
    (13, "ownerReferences", Kind::RepMsg(OWNER_REF)),
    (14, "finalizers", Kind::RepStr),
];
const OBJECT_REF: &[Field] = &[
    (1, "kind", Kind::Str),
    (2, "namespace", Kind::Str),
    (3, "name", Kind::Str),
    (4, "uid", Kind::Str),
    (5, "apiVersion", Kind::Str),
    (6, "resourceVersion", Kind::Str),
    (7, "fieldPath", Kind::Str),
];
const LOCAL_REF: &[Field] = &[(1, "name", Kind::Str)];
const PRECONDITIONS: &[Field] = &[(1, "uid", Kind::Str), (2, "resourceVersion", Kind::Str)];
const DELETE_OPTIONS: &[Field] = &[
    (1, "gracePeriodSeconds", Kind::Int),
    (2, "preconditions", Kind::Msg(PRECONDITIONS)),
    (3, "orphanDependents", Kind::Bool),
    (4, "propagationPolicy", Kind::Str),
    (5, "dryRun", Kind::RepStr),
];
const NAMESPACE_SPEC: &[Field] = &[(1, "finalizers", Kind::RepStr)];

fn schema_of(kind: &str) -> Option<&'static [Field]> {
    const CONFIG_MAP: &[Field] = &[
        (1, "metadata", Kind::Msg(OBJECT_META)),
        (2, "data", Kind::MapStr),
        (3, "binaryData", Kind::MapBytes),
        (4, "immutable", Kind::Bool),
    ];
    const SECRET: &[Field] = &[
        (1, "metadata", Kind::Msg(OBJECT_META)),
        (2, "data", Kind::MapBytes),
        (3, "type", Kind::Str),
        (4, "stringData", Kind::MapStr),
        (5, "immutable", Kind::Bool),
    ];
    const NAMESPACE: &[Field] = &[
        (1, "metadata", Kind::Msg(OBJECT_META)),
        (2, "spec", Kind::Msg(NAMESPACE_SPEC)),
    ];
    const SERVICE_ACCOUNT: &[Field] = &[
        (1, "metadata", Kind::Msg(OBJECT_META)),
        (2, "secrets", Kind::RepMsg(OBJECT_REF)),
        (3, "imagePullSecrets", Kind::RepMsg(LOCAL_REF)),
        (4, "automountServiceAccountToken", Kind::Bool),
    ];
    const EVICTION: &[Field] = &[
        (1, "metadata", Kind::Msg(OBJECT_META)),
        (2, "deleteOptions", Kind::Msg(DELETE_OPTIONS)),
    ];
    Some(match kind {
        "ConfigMap" => CONFIG_MAP,
        "Secret" => SECRET,
        "Namespace" => NAMESPACE,
        "ServiceAccount" => SERVICE_ACCOUNT,
        "Eviction" => EVICTION,
        "DeleteOptions" => DELETE_OPTIONS,
        _ => return None,
    })
}

fn text(b: &[u8]) -> ApiResult<String> {
    String::from_utf8(b.to_vec()).map_err(|_| bad("string is not UTF-8"))
}

fn map_entry(b: &[u8], bytes_value: bool) -> ApiResult<(String, Value)> {
    let mut key = String::new();
    let mut value = Value::String(String::new());
    for (n, w) in fields(b)? {
        if let Wire::Bytes(x) = w {
            match n {
                1 => key = text(x)?,
                2 if bytes_value => {
                    value = json!(base64::engine::general_purpose::STANDARD.encode(x))
                }
                2 => value = json!(text(x)?),
                _ => {}
            }
        }
    }
    Ok((key, value))
}

fn message(buf: &[u8], schema: &[Field]) -> ApiResult<Value> {
    let mut out = Map::new();
    for (number, wire) in fields(buf)? {
        let Some((_, name, kind)) = schema.iter().find(|(n, _, _)| *n == number) else {
            continue;
        };
        let name = name.to_string();
        match (kind, wire) {
            (Kind::Str, Wire::Bytes(b)) => {
                out.insert(name, json!(text(b)?));
            }
            (Kind::Bool, Wire::Varint(v)) => {
                out.insert(name, json!(v != 0));
            }
            (Kind::Int, Wire::Varint(v)) => {
                out.insert(name, json!(v as i64));
            }
            (Kind::Time, Wire::Bytes(b)) => {
                let seconds = fields(b)?.into_iter().find_map(|(n, w)| match (n, w) {
                    (1, Wire::Varint(s)) => Some(s as i64),
                    _ => None,
                });
                if let Some(t) = seconds.and_then(|s| chrono::DateTime::from_timestamp(s, 0)) {
                    out.insert(
                        name,
                        json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    );
                }
            }
            (Kind::Msg(s), Wire::Bytes(b)) => {
                out.insert(name, message(b, s)?);
            }
            (Kind::MapStr | Kind::MapBytes, Wire::Bytes(b)) => {
                let (k, v) = map_entry(b, matches!(kind, Kind::MapBytes))?;
                out.entry(name).or_insert_with(|| json!({}))[k] = v;
            }
            (Kind::RepStr, Wire::Bytes(b)) => {
                let v = json!(text(b)?);
                if let Some(list) = out.entry(name).or_insert_with(|| json!([])).as_array_mut() {
                    list.push(v);
                }
            }
            (Kind::RepMsg(s), Wire::Bytes(b)) => {
                let v = message(b, s)?;
                if let Some(list) = out.entry(name).or_insert_with(|| json!([])).as_array_mut() {
                    list.push(v);
                }
            }
            _ => return Err(bad("field has an unexpected wire type")),
        }
    }
    Ok(Value::Object(out))
}

/// Decode a `k8s\0`-prefixed body (a `runtime.Unknown` envelope) into JSON.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("missing k8s magic"))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, w) in fields(envelope)? {
        match (n, w) {
            (1, Wire::Bytes(type_meta)) => {
                for (m, v) in fields(type_meta)? {
                    match (m, v) {
                        (1, Wire::Bytes(b)) => api_version = text(b)?,
                        (2, Wire::Bytes(b)) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let schema = schema_of(&kind).ok_or(ApiError::UnsupportedMediaType)?;
    let mut obj = message(raw, schema)?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn field(n: u64, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![((n << 3) | 2) as u8, payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn decodes_a_configmap_envelope() {
        let meta = [
            field(1, b"cm"),
            field(11, &[field(1, b"a"), field(2, b"b")].concat()),
        ]
        .concat();
        let cm = [
            field(1, &meta),
            field(2, &[field(1, b"k"), field(2, b"v")].concat()),
        ]
        .concat();
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &cm)].concat();
        let obj = decode(&body).unwrap();
        assert_eq!(
            obj,
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","labels":{"a":"b"}},"data":{"k":"v"}})
        );
    }

    proptest! {
        #[test]
        fn never_panics(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
            let body = [MAGIC.to_vec(), tail].concat();
            let _ = decode(&body);
        }
    }
}
