//! The Multus `NetworkAttachmentDefinition` of each network: same name and namespace, owned by the
//! `VirtualNetwork` (so Kubernetes deletes it with the network), config pointing at the `weft`
//! plugin. A NAD deleted or edited by hand is put back on the next reconcile.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use weft_api::{NetworkAttachmentDefinition, NetworkAttachmentDefinitionSpec, VirtualNetwork};

use super::{K8sError, call};

/// Label on objects Weft manages.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// What [`ensure`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NadOutcome {
    /// Already as it should be.
    InSync,
    Created,
    /// It existed but differed (edited by hand); Weft's version was written back.
    Restored,
    /// A NAD of that name exists that Weft does not own; left alone.
    NameTaken,
}

/// The NAD `vn` should have.
pub fn desired(vn: &VirtualNetwork) -> Result<NetworkAttachmentDefinition, K8sError> {
    let ns = vn.namespace().ok_or(K8sError::Incomplete("namespace"))?;
    let name = vn.name_any();
    let owner = vn
        .controller_owner_ref(&())
        .ok_or(K8sError::Incomplete("uid"))?;
    Ok(NetworkAttachmentDefinition {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.to_string(),
                weft_api::MANAGER.to_string(),
            )])),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: NetworkAttachmentDefinitionSpec {
            config: weft_api::nad_config(&ns, &name),
        },
    })
}

fn owned_by(nad: &NetworkAttachmentDefinition, owner: &OwnerReference) -> bool {
    nad.owner_references().iter().any(|o| o.uid == owner.uid)
}

fn managed(nad: &NetworkAttachmentDefinition) -> bool {
    nad.labels().get(MANAGED_BY).map(String::as_str) == Some(weft_api::MANAGER)
}

/// Makes the cluster's NAD for `vn` what [`desired`] says.
pub async fn ensure(
    client: &Client,
    vn: &VirtualNetwork,
    limit: Duration,
) -> Result<NadOutcome, K8sError> {
    let want = desired(vn)?;
    let ns = want.metadata.namespace.clone().unwrap_or_default();
    let name = vn.name_any();
    let api: Api<NetworkAttachmentDefinition> = Api::namespaced(client.clone(), &ns);
    let what = format!("NetworkAttachmentDefinition {ns}/{name}");
    let have = call(format!("get {what}"), limit, api.get_opt(&name)).await?;
    let Some(have) = have else {
        call(
            format!("create {what}"),
            limit,
            api.create(&PostParams::default(), &want),
        )
        .await?;
        return Ok(NadOutcome::Created);
    };
    let owner = want
        .metadata
        .owner_references
        .as_ref()
        .and_then(|o| o.first())
        .ok_or(K8sError::Incomplete("owner"))?;
    if !owned_by(&have, owner) && !managed(&have) {
        return Ok(NadOutcome::NameTaken);
    }
    let config_ok = serde_json::from_str::<serde_json::Value>(&have.spec.config).ok()
        == serde_json::from_str::<serde_json::Value>(&want.spec.config).ok();
    if config_ok && owned_by(&have, owner) && managed(&have) {
        return Ok(NadOutcome::InSync);
    }
    // Owner references are a list: merge patch replaces it whole, keeping other owners.
    let mut owners: Vec<OwnerReference> = have
        .owner_references()
        .iter()
        .filter(|o| o.uid != owner.uid)
        .cloned()
        .collect();
    owners.push(owner.clone());
    let patch = serde_json::json!({
        "metadata": {
            "labels": {MANAGED_BY: weft_api::MANAGER},
            "ownerReferences": owners,
        },
        "spec": {"config": want.spec.config},
    });
    call(
        format!("restore {what}"),
        limit,
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)),
    )
    .await?;
    Ok(NadOutcome::Restored)
}

/// Deletes `vn`'s NAD if Weft owns it (Kubernetes' garbage collector would too; doing it here
/// makes the finalizer's "everything is gone" immediate).
pub async fn remove(client: &Client, vn: &VirtualNetwork, limit: Duration) -> Result<(), K8sError> {
    let ns = vn.namespace().ok_or(K8sError::Incomplete("namespace"))?;
    let name = vn.name_any();
    let api: Api<NetworkAttachmentDefinition> = Api::namespaced(client.clone(), &ns);
    let what = format!("NetworkAttachmentDefinition {ns}/{name}");
    let Some(have) = call(format!("get {what}"), limit, api.get_opt(&name)).await? else {
        return Ok(());
    };
    let uid = vn.meta().uid.clone().unwrap_or_default();
    if !have.owner_references().iter().any(|o| o.uid == uid) {
        return Ok(());
    }
    match tokio::time::timeout(limit, api.delete(&name, &Default::default())).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if K8sError::is_not_found(&e) => Ok(()),
        Ok(Err(e)) => Err(K8sError::classify(format!("delete {what}"), e)),
        Err(_) => Err(K8sError::Timeout {
            what: format!("delete {what}"),
            after: limit,
        }),
    }
}
