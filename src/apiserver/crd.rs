//! CustomResourceDefinition lifecycle: validation of the definition, the status a real server
//! reports (`NamesAccepted`, `Established`, `acceptedNames`), and serving/unserving its resources.

use serde_json::{Value, json};

use super::admission::{name_of, now};
use super::registry::def_from_crd;
use super::state::State;
use super::status::{ApiError, ApiResult, Cause, Subject, invalid_value};

fn subject(name: &str) -> Box<Subject> {
    Box::new(Subject {
        group: "apiextensions.k8s.io".into(),
        resource: "customresourcedefinitions".into(),
        kind: "CustomResourceDefinition".into(),
        name: name.into(),
    })
}

/// Validate a CRD and fill in its status; `old` is the stored CRD on update.
pub fn prepare(state: &State, crd: &mut Value, old: Option<&Value>) -> ApiResult<()> {
    let name = name_of(crd).to_string();
    let def = def_from_crd(crd).map_err(|m| {
        ApiError::Invalid(
            subject(&name),
            vec![Cause::new(
                "FieldValueRequired",
                "spec",
                format!("Required value: {m}"),
            )],
        )
    })?;
    let expected = format!("{}.{}", def.plural, def.group);
    if name != expected {
        return Err(ApiError::Invalid(
            subject(&name),
            vec![Cause::new(
                "FieldValueInvalid",
                "metadata.name",
                invalid_value(
                    &json!(name),
                    &format!("must be spec.names.plural+\".\"+spec.group ({expected})"),
                ),
            )],
        ));
    }
    let storage = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| vs.iter().filter(|v| v["storage"] == true).count())
        .unwrap_or(0);
    if storage != 1 {
        return Err(ApiError::Invalid(
            subject(&name),
            vec![Cause::new(
                "FieldValueInvalid",
                "spec.versions",
                invalid_value(
                    &json!(storage),
                    "must have exactly one version marked as storage version",
                ),
            )],
        ));
    }
    if let Some(existing) = state.registry.get(&def.group, &def.plural)
        && !existing.is_custom()
    {
        return Err(ApiError::Invalid(
            subject(&name),
            vec![Cause::new(
                "FieldValueInvalid",
                "spec.names.plural",
                invalid_value(&json!(def.plural), "conflicts with a built-in resource"),
            )],
        ));
    }
    let transition = |t: &str| {
        old.and_then(|o| o.pointer("/status/conditions"))
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == t))
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(now()))
    };
    let mut accepted = json!({"plural": def.plural, "singular": def.singular, "kind": def.kind, "listKind": def.list_kind});
    if !def.short_names.is_empty() {
        accepted["shortNames"] = json!(def.short_names);
    }
    if !def.categories.is_empty() {
        accepted["categories"] = json!(def.categories);
    }
    crd["status"] = json!({
        "acceptedNames": accepted,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": transition("NamesAccepted")},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": transition("Established")}
        ],
        "storedVersions": [def.storage_version()],
    });
    Ok(())
}

/// Serve the resources a stored CRD defines (at once: the server has no controllers to wait for).
pub fn activate(state: &State, crd: &Value) {
    if let Ok(def) = def_from_crd(crd) {
        state.registry.insert(def);
    }
}

/// Stop serving a deleted CRD's resources and delete their objects.
pub fn deactivate(state: &State, crd: &Value) {
    if let Ok(def) = def_from_crd(crd) {
        let gr = def.group_resource();
        state.registry.remove(&gr);
        state.store.drop_resource(&gr);
    }
}
