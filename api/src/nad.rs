//! The Multus `NetworkAttachmentDefinition` (`k8s.cni.cncf.io/v1`). Multus ships its CRD; Weft
//! only reads and writes objects of it.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The pod annotation Multus reads.
pub const NAD_NETWORKS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/networks";

#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    group = "k8s.cni.cncf.io",
    version = "v1",
    kind = "NetworkAttachmentDefinition",
    plural = "network-attachment-definitions",
    shortname = "net-attach-def",
    namespaced,
    derive = "Default",
    derive = "PartialEq"
)]
pub struct NetworkAttachmentDefinitionSpec {
    /// The CNI configuration Multus hands to the plugin, as a JSON string.
    #[serde(default)]
    pub config: String,
}

/// The CNI configuration of network `namespace/name`: the `weft` plugin, told which network, with
/// the `mac` and `ips` capabilities so Multus passes a pod's requested MAC and addresses through
/// `runtimeConfig`.
pub fn nad_config(namespace: &str, name: &str) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "type": "weft",
        "network": format!("{namespace}/{name}"),
        "capabilities": {"mac": true, "ips": true},
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_the_documented_json() {
        let v: serde_json::Value = serde_json::from_str(&nad_config("team-a", "red")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"cniVersion":"1.0.0","type":"weft","network":"team-a/red",
                "capabilities":{"mac":true,"ips":true}})
        );
    }
}
