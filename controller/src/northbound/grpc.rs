//! gRPC transport of the northbound API (`weft.northbound.v1.NetworkService`).

use std::pin::Pin;

use futures::Stream;
use tonic::{Request, Response, Status};
use weft_proto::common::v1 as common;
use weft_proto::northbound::v1 as pb;
use weft_proto::northbound::v1::network_service_server::NetworkService;

use super::{Api, ApiError, AttachmentView, CreateNetwork, NetworkView};
use weft_api::{PortSecurity, VirtualNetworkSpec};

use crate::model::NetworkKey;

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let m = e.message().to_string();
        match e {
            ApiError::BadRequest(_) => Status::invalid_argument(m),
            ApiError::NotFound(_) => Status::not_found(m),
            ApiError::Conflict(_) => Status::already_exists(m),
            ApiError::Forbidden(_) => Status::permission_denied(m),
            ApiError::Exhausted(_) => Status::resource_exhausted(m),
            ApiError::Unavailable(_) => Status::unavailable(m),
        }
    }
}

fn key(r: Option<pb::NetworkRef>) -> Result<NetworkKey, Status> {
    let r = r.ok_or_else(|| Status::invalid_argument("network ref missing"))?;
    NetworkKey::parse(&format!("{}/{}", r.namespace, r.name))
        .map_err(|e| Status::invalid_argument(e.to_string()))
}

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn port_security_pb(p: PortSecurity) -> pb::PortSecurity {
    match p {
        PortSecurity::Strict => pb::PortSecurity::Strict,
        PortSecurity::MacOnly => pb::PortSecurity::MacOnly,
        PortSecurity::Off => pb::PortSecurity::Off,
    }
}

/// An enum value this build does not know is refused, not read as the default: the caller
/// asked for some other checking than `Strict`.
fn port_security(v: i32) -> Result<PortSecurity, Status> {
    match pb::PortSecurity::try_from(v) {
        Ok(pb::PortSecurity::Strict) => Ok(PortSecurity::Strict),
        Ok(pb::PortSecurity::MacOnly) => Ok(PortSecurity::MacOnly),
        Ok(pb::PortSecurity::Off) => Ok(PortSecurity::Off),
        Err(_) => Err(Status::invalid_argument(format!(
            "unknown port_security {v}: use STRICT, MAC_ONLY or OFF"
        ))),
    }
}

/// The model's spec for a protobuf spec (proto3 has no absent strings: empty means unset).
fn from_pb(s: pb::NetworkSpec) -> Result<VirtualNetworkSpec, Status> {
    Ok(VirtualNetworkSpec {
        subnet: opt(s.subnet),
        gateway: opt(s.gateway),
        exclude_ips: s.exclude_ips,
        mtu: (s.mtu != 0).then_some(s.mtu),
        allowed_namespaces: s.allowed_namespaces,
        port_security: port_security(s.port_security)?,
    })
}

/// `current` with the fields named in `mask` taken from `given` (all of them for an empty mask).
fn masked(
    current: &VirtualNetworkSpec,
    given: &VirtualNetworkSpec,
    mask: &[String],
) -> Result<VirtualNetworkSpec, ApiError> {
    if mask.is_empty() {
        return Ok(given.clone());
    }
    let mut out = current.clone();
    for field in mask {
        match field.as_str() {
            "subnet" => out.subnet = given.subnet.clone(),
            "gateway" => out.gateway = given.gateway.clone(),
            "exclude_ips" => out.exclude_ips = given.exclude_ips.clone(),
            "mtu" => out.mtu = given.mtu,
            "allowed_namespaces" => out.allowed_namespaces = given.allowed_namespaces.clone(),
            "port_security" => out.port_security = given.port_security,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "update_mask names {other:?}; spec fields are subnet, gateway, exclude_ips, mtu, allowed_namespaces, port_security"
                )));
            }
        }
    }
    Ok(out)
}

fn to_pb(v: NetworkView) -> pb::Network {
    pb::Network {
        r#ref: Some(pb::NetworkRef {
            namespace: v.namespace,
            name: v.name,
        }),
        spec: Some(pb::NetworkSpec {
            subnet: v.spec.subnet.unwrap_or_default(),
            gateway: v.spec.gateway.unwrap_or_default(),
            exclude_ips: v.spec.exclude_ips,
            mtu: v.spec.mtu.unwrap_or(0),
            allowed_namespaces: v.spec.allowed_namespaces,
            port_security: port_security_pb(v.spec.port_security) as i32,
        }),
        segment: v.segment as u32,
        attachments: v.attachments as u32,
        ready: v.ready,
    }
}

fn attachment_pb(a: AttachmentView) -> pb::Attachment {
    let (namespace, name) = a
        .network
        .split_once('/')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap_or_default();
    pb::Attachment {
        id: Some(common::AttachmentId {
            container_id: a.container_id,
            ifname: a.ifname,
        }),
        network: Some(pb::NetworkRef { namespace, name }),
        node: a.node,
        ofport: a.ofport,
        mac: a.mac,
        ips: a.ips,
        pod: Some(common::PodRef {
            namespace: a.pod_namespace,
            name: a.pod_name,
            uid: a.pod_uid,
        }),
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::ListNetworksReply, Status>> + Send>>;

#[tonic::async_trait]
impl NetworkService for Api {
    async fn create_network(
        &self,
        req: Request<pb::CreateNetworkRequest>,
    ) -> Result<Response<pb::Network>, Status> {
        let r = req.into_inner();
        let k = key(r.r#ref)?;
        let v = self.create(CreateNetwork {
            namespace: k.namespace,
            name: k.name,
            spec: from_pb(r.spec.unwrap_or_default())?,
        })?;
        Ok(Response::new(to_pb(v)))
    }

    async fn update_network(
        &self,
        req: Request<pb::UpdateNetworkRequest>,
    ) -> Result<Response<pb::Network>, Status> {
        let r = req.into_inner();
        let k = key(r.r#ref)?;
        let given = from_pb(r.spec.unwrap_or_default())?;
        let v = self.update(&k, |current| masked(current, &given, &r.update_mask))?;
        Ok(Response::new(to_pb(v)))
    }

    async fn delete_network(
        &self,
        req: Request<pb::DeleteNetworkRequest>,
    ) -> Result<Response<pb::DeleteNetworkReply>, Status> {
        let r = req.into_inner();
        let removed = self.delete(&key(r.r#ref)?, r.force)?;
        Ok(Response::new(pb::DeleteNetworkReply {
            attachments_removed: removed as u32,
        }))
    }

    async fn get_network(
        &self,
        req: Request<pb::NetworkRef>,
    ) -> Result<Response<pb::Network>, Status> {
        let v = self.get(&key(Some(req.into_inner()))?)?;
        Ok(Response::new(to_pb(v)))
    }

    async fn list_networks(
        &self,
        req: Request<pb::ListNetworksRequest>,
    ) -> Result<Response<pb::ListNetworksReply>, Status> {
        let ns = opt(req.into_inner().namespace);
        let networks = self.list(ns.as_deref()).into_iter().map(to_pb).collect();
        Ok(Response::new(pb::ListNetworksReply { networks }))
    }

    type WatchNetworksStream = WatchStream;

    async fn watch_networks(
        &self,
        req: Request<pb::ListNetworksRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let ns = opt(req.into_inner().namespace);
        let api = self.clone();
        let mut rx = self.store.subscribe();
        let (tx, out) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut last = None;
            loop {
                rx.borrow_and_update();
                let list: Vec<pb::Network> =
                    api.list(ns.as_deref()).into_iter().map(to_pb).collect();
                if last.as_ref() != Some(&list) {
                    last = Some(list.clone());
                    let reply = pb::ListNetworksReply { networks: list };
                    if tx.send(Ok(reply)).await.is_err() {
                        return;
                    }
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(out),
        )))
    }

    async fn list_attachments(
        &self,
        req: Request<pb::ListAttachmentsRequest>,
    ) -> Result<Response<pb::ListAttachmentsReply>, Status> {
        let filter = match req.into_inner().network {
            Some(r) => Some(key(Some(r))?),
            None => None,
        };
        let attachments = self
            .attachments(filter.as_ref())?
            .into_iter()
            .map(attachment_pb)
            .collect();
        Ok(Response::new(pb::ListAttachmentsReply { attachments }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_mask_takes_only_the_named_fields() {
        let current = VirtualNetworkSpec {
            subnet: Some("10.1.0.0/24".into()),
            mtu: Some(1400),
            ..Default::default()
        };
        let given = from_pb(pb::NetworkSpec {
            gateway: "10.1.0.1".into(),
            allowed_namespaces: vec!["*".into()],
            ..Default::default()
        })
        .unwrap();
        let only_gw = masked(&current, &given, &["gateway".into()]).unwrap();
        assert_eq!(only_gw.gateway.as_deref(), Some("10.1.0.1"));
        assert_eq!(
            (only_gw.mtu, only_gw.allowed_namespaces.len()),
            (Some(1400), 0)
        );
        // A named field left empty is removed.
        let no_mtu = masked(&current, &given, &["mtu".into()]).unwrap();
        assert_eq!((no_mtu.mtu, no_mtu.subnet), (None, current.subnet.clone()));
        assert_eq!(masked(&current, &given, &[]).unwrap(), given);
        assert!(matches!(
            masked(&current, &given, &["colour".into()]),
            Err(ApiError::BadRequest(m)) if m.contains("colour")
        ));
    }
}
