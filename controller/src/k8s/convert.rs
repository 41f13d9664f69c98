//! Between the Kubernetes resources and the model: specs in, status out, and the model rebuilt
//! from status when a controller becomes leader. Pure functions, so the rules are unit-tested
//! without an API server.

use std::net::IpAddr;

use ipnet::IpNet;
use weft_api::{AttachmentStatus, VirtualNetworkSpec, VirtualNetworkStatus};

use crate::ipam::{self, Reservation};
use crate::model::{
    Attachment, AttachmentId, Model, ModelError, Network, NetworkKey, PodRef, fmt_mac,
};

/// Why a spec was not put into the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecRejected {
    /// The spec is wrong on its own.
    #[error("{0}")]
    Invalid(ModelError),
    /// The spec is fine but would strand attached pods.
    #[error("{0}")]
    Conflict(ModelError),
    #[error("{0}")]
    Exhausted(ModelError),
}

impl SpecRejected {
    pub fn reason(&self) -> &'static str {
        use weft_api::conditions as c;
        match self {
            SpecRejected::Invalid(_) => c::REASON_INVALID_SPEC,
            SpecRejected::Conflict(_) => c::REASON_SPEC_CONFLICT,
            SpecRejected::Exhausted(_) => c::REASON_SEGMENTS_EXHAUSTED,
        }
    }
}

impl From<ModelError> for SpecRejected {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::SegmentsExhausted => SpecRejected::Exhausted(e),
            ModelError::SpecStrandsPods { .. } => SpecRejected::Conflict(e),
            e => SpecRejected::Invalid(e),
        }
    }
}

/// Puts `spec` into the model as network `key`: a new network gets the lowest free segment, an
/// existing one is edited by [`Model::update_network`] (which refuses edits stranding pods and
/// then leaves the model unchanged, so the data plane keeps the previous spec). Returns the
/// segment.
pub fn upsert_network(
    model: &mut Model,
    key: &NetworkKey,
    spec: &VirtualNetworkSpec,
) -> Result<u16, SpecRejected> {
    let net = match model.networks.contains_key(key) {
        true => model.update_network(key, spec)?,
        false => model.add_network(key.clone(), spec)?,
    };
    Ok(net.segment)
}

/// Pod interfaces on `key`, sorted, as status shows them.
pub fn attachments_status(model: &Model, key: &NetworkKey) -> Vec<AttachmentStatus> {
    let mut out: Vec<AttachmentStatus> = model
        .attachments_of(key)
        .map(|a| AttachmentStatus {
            pod: format!("{}/{}", a.pod.namespace, a.pod.name),
            pod_uid: a.pod.uid.clone(),
            node: a.node.clone(),
            interface: a.id.ifname.clone(),
            container_id: a.id.container_id.clone(),
            mac: fmt_mac(&a.mac),
            ips: a.ips.iter().map(|i| i.to_string()).collect(),
            ofport: a.ofport,
        })
        .collect();
    out.sort_by(|a, b| (&a.pod, &a.interface).cmp(&(&b.pod, &b.interface)));
    out
}

/// The model-derived part of a network's status (segment, applied spec, attachments, address
/// counts); conditions are the reconciler's.
pub fn model_status(model: &Model, key: &NetworkKey) -> Option<VirtualNetworkStatus> {
    let net = model.networks.get(key)?;
    let attachments = attachments_status(model, key);
    let usage = ipam::usage(model, key);
    let allocated = model
        .reservations
        .of_network(key)
        .map(|(_, r)| r.ips.len() as u64)
        .sum();
    Some(VirtualNetworkStatus {
        segment: Some(net.segment),
        applied_spec: Some(net.spec()),
        attachment_count: u32::try_from(attachments.len()).unwrap_or(u32::MAX),
        attachments,
        allocated_ips: allocated,
        available_ips: usage.map(|(used, total)| usable(net, total).saturating_sub(used)),
        ..Default::default()
    })
}

/// Addresses of a subnet of `total` that pods can get (less network, broadcast, gateway and
/// excluded ones).
fn usable(net: &Network, total: u64) -> u64 {
    let Some(subnet) = net.subnet else { return 0 };
    let mut reserved = 1u64; // network address
    if subnet.addr().is_ipv4() && subnet.prefix_len() < 31 {
        reserved += 1;
    }
    if net.gateway.is_some() {
        reserved += 1;
    }
    for e in &net.exclude {
        let bits = e.max_prefix_len() - e.prefix_len();
        reserved = reserved.saturating_add(if bits >= 64 { u64::MAX } else { 1 << bits });
    }
    total.saturating_sub(reserved)
}

/// Rebuilds a network and its attachments from a resource's status, as a new leader does: the
/// same segment, the same addresses, so the switches' flows stay as they are. `None` when the
/// status holds no usable record (never reconciled, or written by an incompatible version).
pub fn restore_into(
    model: &mut Model,
    key: &NetworkKey,
    status: &VirtualNetworkStatus,
) -> Option<()> {
    let segment = status.segment?;
    let spec = status.applied_spec.as_ref()?;
    if model.networks.values().any(|n| n.segment == segment) {
        tracing::warn!(network = %key, segment, "segment recorded twice; the network gets a new one");
        return None;
    }
    let net = Network::from_spec(key.clone(), spec, segment).ok()?;
    let prefix = net.subnet.map(|s| s.prefix_len());
    model.networks.insert(key.clone(), net);
    for a in &status.attachments {
        let Some((ns, name)) = a.pod.split_once('/') else {
            continue;
        };
        let Ok(mac) = ipam::parse_mac(&a.mac) else {
            continue;
        };
        let ips: Vec<IpAddr> = a.ips.iter().filter_map(|i| i.parse().ok()).collect();
        let id = AttachmentId {
            container_id: a.container_id.clone(),
            ifname: a.interface.clone(),
        };
        let pod = PodRef {
            namespace: ns.to_string(),
            name: name.to_string(),
            uid: a.pod_uid.clone(),
        };
        model.reservations.insert(
            id.clone(),
            Reservation {
                network: key.clone(),
                node: a.node.clone(),
                pod: pod.clone(),
                mac,
                ips: ips
                    .iter()
                    .filter_map(|ip| {
                        IpNet::new(*ip, prefix.unwrap_or(if ip.is_ipv4() { 32 } else { 128 })).ok()
                    })
                    .collect(),
            },
        );
        // Inserted directly: nodes register again only after the agents reconnect.
        model.attachments.insert(Attachment {
            id,
            network: key.clone(),
            node: a.node.clone(),
            ofport: a.ofport,
            mac,
            ips,
            pod,
        });
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::ReserveRequest;
    use crate::model::Node;

    fn spec(subnet: &str) -> VirtualNetworkSpec {
        VirtualNetworkSpec {
            subnet: Some(subnet.into()),
            ..Default::default()
        }
    }

    fn with_pod(subnet: &str, ip: &str) -> (Model, NetworkKey) {
        let mut m = Model::default();
        m.nodes.insert(
            "n1".into(),
            Node {
                name: "n1".into(),
                underlay_ip: "192.0.2.1".parse().unwrap(),
                datapath_id: 1,
                tunnel_ports: Default::default(),
            },
        );
        let key = NetworkKey::new("ns", "red");
        upsert_network(&mut m, &key, &spec(subnet)).unwrap();
        let id = AttachmentId {
            container_id: "c1".into(),
            ifname: "net1".into(),
        };
        let pod = PodRef {
            namespace: "ns".into(),
            name: "p1".into(),
            uid: "u1".into(),
        };
        let r = ipam::reserve(
            &mut m,
            ReserveRequest {
                id: id.clone(),
                network: key.clone(),
                node: "n1".into(),
                pod: pod.clone(),
                mac: None,
                ips: vec![ip.parse().unwrap()],
            },
        )
        .unwrap();
        m.attach(Attachment {
            id,
            network: key.clone(),
            node: "n1".into(),
            ofport: 7,
            mac: r.mac,
            ips: r.ips.iter().map(|n| n.addr()).collect(),
            pod,
        })
        .unwrap();
        (m, key)
    }

    #[test]
    fn edits_keep_the_segment_and_refuse_stranding_pods() {
        let (mut m, key) = with_pod("10.1.0.0/24", "10.1.0.9");
        let seg = m.networks[&key].segment;
        // Widening keeps the pod and its segment, and its prefix follows.
        assert_eq!(upsert_network(&mut m, &key, &spec("10.1.0.0/16")), Ok(seg));
        assert_eq!(
            m.reservations.values().next().unwrap().ips[0].to_string(),
            "10.1.0.9/16"
        );
        // Moving elsewhere would strand it: refused, model unchanged.
        let before = m.clone();
        let err = upsert_network(&mut m, &key, &spec("10.2.0.0/24")).unwrap_err();
        assert!(
            matches!(err, SpecRejected::Conflict(ref e) if e.to_string().contains("ns/p1 (net1): 10.1.0.9 is outside the new subnet")),
            "{err}"
        );
        assert_eq!(m, before);
        // Making its address the gateway is refused too.
        let gw = VirtualNetworkSpec {
            gateway: Some("10.1.0.9".into()),
            ..spec("10.1.0.0/16")
        };
        assert!(matches!(
            upsert_network(&mut m, &key, &gw),
            Err(SpecRejected::Conflict(_))
        ));
        // Invalid on its own: the model's message.
        let err = upsert_network(&mut m, &key, &spec("10.1.0.0/33")).unwrap_err();
        assert_eq!(err.to_string(), "invalid CIDR \"10.1.0.0/33\"");
        assert_eq!(err.reason(), weft_api::conditions::REASON_INVALID_SPEC);
    }

    #[test]
    fn port_security_changes_apply_to_a_network_in_use() {
        let (mut m, key) = with_pod("10.1.0.0/24", "10.1.0.9");
        let seg = m.networks[&key].segment;
        let off = VirtualNetworkSpec {
            port_security: weft_api::PortSecurity::Off,
            ..spec("10.1.0.0/24")
        };
        assert_eq!(upsert_network(&mut m, &key, &off), Ok(seg));
        assert_eq!(m.networks[&key].port_security, weft_api::PortSecurity::Off);
        // The applied spec a new leader resumes from carries it.
        let applied = model_status(&m, &key).and_then(|s| s.applied_spec);
        assert_eq!(
            applied.map(|s| s.port_security),
            Some(weft_api::PortSecurity::Off)
        );
    }

    #[test]
    fn status_round_trips_through_restore() {
        let (m, key) = with_pod("10.1.0.0/24", "10.1.0.9");
        let status = model_status(&m, &key).unwrap();
        assert_eq!(status.attachment_count, 1);
        assert_eq!(status.attachments[0].pod, "ns/p1");
        assert_eq!(status.allocated_ips, 1);
        // 256 - network - broadcast - 1 allocated
        assert_eq!(status.available_ips, Some(253));
        let mut restored = Model::default();
        restore_into(&mut restored, &key, &status).unwrap();
        assert_eq!(restored.networks, m.networks);
        assert_eq!(restored.attachments, m.attachments);
        assert_eq!(restored.reservations, m.reservations);
        // A status without a segment restores nothing.
        let mut empty = Model::default();
        assert!(restore_into(&mut empty, &key, &VirtualNetworkStatus::default()).is_none());
        assert!(empty.networks.is_empty());
    }
}
