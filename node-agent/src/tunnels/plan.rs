//! Desired tunnels vs. what the kernel and OVSDB hold -> the smallest set of changes.
//!
//! Pure: no I/O, so every adoption and repair rule is unit tested here. The rules:
//! * a device or port without our ownership mark is never touched; a desired tunnel whose name is
//!   taken by one is reported as a [`Conflict`] and left alone;
//! * a healthy tunnel (right VXLAN parameters, MTU, up, plugged with the right ids) gets no
//!   action at all, so its ifindex and OVS port survive agent restarts;
//! * a device with wrong VNI/local/remote/port/learning is recreated together with its port
//!   (the datapath holds the old device open); a wrong MTU or a down device is fixed in place;
//! * our devices and ports nobody wants any more are removed.

use super::{OWNER_TUNNEL, PEER_KEY, TunnelSpec, is_our_alias};
use crate::cni::ports::keys;
use crate::netlink::LinkDetail;
use crate::ovsdb::Uuid;
use std::collections::{BTreeMap, BTreeSet};

/// An OVS port as read from the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObservedPort {
    pub uuid: Uuid,
    pub name: String,
    /// Whether our bridge's `ports` holds it.
    pub in_bridge: bool,
    pub external_ids: BTreeMap<String, String>,
    /// Its interfaces: (name, type).
    pub ifaces: Vec<(String, String)>,
}

impl ObservedPort {
    pub(crate) fn owned(&self) -> bool {
        self.external_ids.get(keys::OWNER).map(String::as_str) == Some(OWNER_TUNNEL)
    }

    fn peer(&self) -> Option<&str> {
        self.external_ids.get(PEER_KEY).map(String::as_str)
    }
}

/// What exists now: kernel links and OVS ports, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Observed {
    pub links: BTreeMap<String, LinkDetail>,
    pub ports: BTreeMap<String, ObservedPort>,
}

/// One change. [`Plan::actions`] lists them in execution order: port removals, device removals,
/// device creations and fixes, port additions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    DeletePort {
        name: String,
        uuid: Uuid,
        reason: String,
    },
    DeleteDevice {
        name: String,
        index: u32,
        reason: String,
    },
    CreateDevice {
        spec: TunnelSpec,
        reason: String,
    },
    /// In-place repair of our device: MTU (when `Some`) and admin up.
    FixDevice {
        name: String,
        index: u32,
        mtu: Option<u32>,
    },
    AddPort {
        spec: TunnelSpec,
    },
}

impl Action {
    fn phase(&self) -> u8 {
        match self {
            Action::DeletePort { .. } => 0,
            Action::DeleteDevice { .. } => 1,
            Action::CreateDevice { .. } => 2,
            Action::FixDevice { .. } => 3,
            Action::AddPort { .. } => 4,
        }
    }

    /// The tunnel (interface) name this action is about.
    pub(crate) fn name(&self) -> &str {
        match self {
            Action::DeletePort { name, .. }
            | Action::DeleteDevice { name, .. }
            | Action::FixDevice { name, .. } => name,
            Action::CreateDevice { spec, .. } | Action::AddPort { spec } => &spec.name,
        }
    }
}

/// A desired tunnel that cannot be made because a foreign object holds its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub peer: String,
    pub name: String,
    pub why: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub conflicts: Vec<Conflict>,
    /// Desired tunnels that need nothing.
    pub healthy: BTreeSet<String>,
}

impl Plan {}

/// Why our device does not match `spec` in a way only recreation fixes, if it does not.
fn device_mismatch(l: &LinkDetail, spec: &TunnelSpec) -> Option<String> {
    let Some(v) = &l.vxlan else {
        return Some(format!(
            "is a {} link, not vxlan",
            l.kind.as_deref().unwrap_or("plain")
        ));
    };
    let mut why = Vec::new();
    if v.vni != spec.vni {
        why.push(format!("vni {} != {}", v.vni, spec.vni));
    }
    if v.remote != Some(spec.remote) {
        why.push(format!("remote {:?} != {}", v.remote, spec.remote));
    }
    if v.local != Some(spec.local) {
        why.push(format!("local {:?} != {}", v.local, spec.local));
    }
    if v.port != spec.port {
        why.push(format!("dstport {} != {}", v.port, spec.port));
    }
    if v.learning {
        why.push("learning on".into());
    }
    (!why.is_empty()).then(|| why.join(", "))
}

/// Why our port does not fit `spec`, if it does not.
fn port_mismatch(p: &ObservedPort, spec: &TunnelSpec) -> Option<String> {
    if !p.in_bridge {
        return Some("not on our bridge".into());
    }
    if p.peer() != Some(spec.peer.as_str()) {
        return Some(format!("names peer {:?}, not {}", p.peer(), spec.peer));
    }
    match p.ifaces.as_slice() {
        [(n, t)] if n == &spec.name && (t.is_empty() || t == "system") => None,
        other => Some(format!(
            "interfaces {other:?} instead of one system interface"
        )),
    }
}

/// Computes the changes that turn `seen` into `want` (keyed by interface name).
pub(crate) fn plan(want: &BTreeMap<String, TunnelSpec>, seen: &Observed) -> Plan {
    let mut p = Plan::default();
    for (name, spec) in want {
        let link = seen.links.get(name);
        let port = seen.ports.get(name);
        let conflict = |why: String| Conflict {
            peer: spec.peer.clone(),
            name: name.clone(),
            why,
        };
        if let Some(l) = link.filter(|l| !is_our_alias(l.alias.as_deref())) {
            p.conflicts.push(conflict(format!(
                "a foreign {} link named {name} exists (index {}, alias {:?}); not touching it",
                l.kind.as_deref().unwrap_or("plain"),
                l.info.index,
                l.alias
            )));
            continue;
        }
        if let Some(pt) = port.filter(|pt| !pt.owned()) {
            p.conflicts.push(conflict(format!(
                "a foreign OVS port named {name} exists ({}); not touching it",
                pt.uuid
            )));
            continue;
        }
        let before = p.actions.len();
        let mut replug = None;
        match link {
            None => {
                p.actions.push(Action::CreateDevice {
                    spec: spec.clone(),
                    reason: "missing".into(),
                });
                // A port left by a crash between plug and device loss: plug afresh.
                if port.is_some() {
                    replug = Some("device was missing".to_string());
                }
            }
            Some(l) => match device_mismatch(l, spec) {
                Some(why) => {
                    p.actions.push(Action::DeleteDevice {
                        name: name.clone(),
                        index: l.info.index,
                        reason: why.clone(),
                    });
                    p.actions.push(Action::CreateDevice {
                        spec: spec.clone(),
                        reason: why.clone(),
                    });
                    replug = Some(format!("device recreated ({why})"));
                }
                None => {
                    if l.info.mtu != spec.mtu || !l.info.up {
                        p.actions.push(Action::FixDevice {
                            name: name.clone(),
                            index: l.info.index,
                            mtu: (l.info.mtu != spec.mtu).then_some(spec.mtu),
                        });
                    }
                }
            },
        }
        match (port, replug) {
            (None, _) => p.actions.push(Action::AddPort { spec: spec.clone() }),
            (Some(pt), Some(why)) => {
                p.actions.push(Action::DeletePort {
                    name: name.clone(),
                    uuid: pt.uuid.clone(),
                    reason: why,
                });
                p.actions.push(Action::AddPort { spec: spec.clone() });
            }
            (Some(pt), None) => {
                if let Some(why) = port_mismatch(pt, spec) {
                    p.actions.push(Action::DeletePort {
                        name: name.clone(),
                        uuid: pt.uuid.clone(),
                        reason: why,
                    });
                    p.actions.push(Action::AddPort { spec: spec.clone() });
                }
            }
        }
        if p.actions.len() == before {
            p.healthy.insert(name.clone());
        }
    }
    for (name, l) in &seen.links {
        if !want.contains_key(name) && is_our_alias(l.alias.as_deref()) {
            p.actions.push(Action::DeleteDevice {
                name: name.clone(),
                index: l.info.index,
                reason: "peer no longer wanted".into(),
            });
        }
    }
    for (name, pt) in &seen.ports {
        if !want.contains_key(name) && pt.owned() {
            p.actions.push(Action::DeletePort {
                name: name.clone(),
                uuid: pt.uuid.clone(),
                reason: "peer no longer wanted".into(),
            });
        }
    }
    p.actions.sort_by_key(Action::phase);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::{LinkInfo, VxlanParams};
    use crate::tunnels::{alias_for, tunnel_ifname};
    use std::net::IpAddr;

    type Edit<T> = Box<dyn Fn(&mut T)>;

    fn spec(peer: &str, remote: &str) -> TunnelSpec {
        TunnelSpec {
            peer: peer.into(),
            name: tunnel_ifname(peer),
            local: "10.0.0.1".parse().unwrap(),
            remote: remote.parse().unwrap(),
            vni: 42,
            port: 4789,
            mtu: 1500,
        }
    }

    fn want(specs: &[TunnelSpec]) -> BTreeMap<String, TunnelSpec> {
        specs.iter().map(|s| (s.name.clone(), s.clone())).collect()
    }

    fn device(s: &TunnelSpec, index: u32) -> LinkDetail {
        LinkDetail {
            info: LinkInfo {
                index,
                name: s.name.clone(),
                mac: None,
                mtu: s.mtu,
                up: true,
            },
            kind: Some("vxlan".into()),
            alias: Some(alias_for(&s.peer)),
            vxlan: Some(VxlanParams {
                vni: s.vni,
                local: Some(s.local),
                remote: Some(s.remote),
                port: s.port,
                learning: false,
            }),
        }
    }

    fn uuid(n: u8) -> Uuid {
        Uuid::parse(&format!("00000000-0000-0000-0000-0000000000{n:02x}")).unwrap()
    }

    fn port(s: &TunnelSpec, n: u8) -> ObservedPort {
        ObservedPort {
            uuid: uuid(n),
            name: s.name.clone(),
            in_bridge: true,
            external_ids: [
                (keys::OWNER.to_string(), OWNER_TUNNEL.to_string()),
                (PEER_KEY.to_string(), s.peer.clone()),
            ]
            .into(),
            ifaces: vec![(s.name.clone(), String::new())],
        }
    }

    fn healthy(specs: &[(&TunnelSpec, u8)]) -> Observed {
        let mut o = Observed::default();
        for (s, n) in specs {
            o.links.insert(s.name.clone(), device(s, u32::from(*n)));
            o.ports.insert(s.name.clone(), port(s, *n));
        }
        o
    }

    /// Actions as (kind, name), sorted by phase then name (the plan orders by phase, and by
    /// interface name within a phase, which tests should not depend on).
    fn kinds(p: &Plan) -> Vec<(&'static str, String)> {
        sorted(
            p.actions
                .iter()
                .map(|a| {
                    let k = match a {
                        Action::DeletePort { .. } => "del-port",
                        Action::DeleteDevice { .. } => "del-dev",
                        Action::CreateDevice { .. } => "create-dev",
                        Action::FixDevice { .. } => "fix-dev",
                        Action::AddPort { .. } => "add-port",
                    };
                    (k, a.name().to_string())
                })
                .collect(),
        )
    }

    fn sorted(mut v: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
        let rank = |k: &str| {
            ["del-port", "del-dev", "create-dev", "fix-dev", "add-port"]
                .iter()
                .position(|x| *x == k)
        };
        v.sort_by(|a, b| (rank(a.0), &a.1).cmp(&(rank(b.0), &b.1)));
        v
    }

    #[test]
    fn from_scratch_creates_device_then_port() {
        let b = spec("b", "10.0.0.2");
        let c = spec("c", "10.0.0.3");
        let p = plan(&want(&[b.clone(), c.clone()]), &Observed::default());
        assert_eq!(
            kinds(&p),
            sorted(vec![
                ("create-dev", b.name.clone()),
                ("create-dev", c.name.clone()),
                ("add-port", b.name.clone()),
                ("add-port", c.name.clone()),
            ])
        );
        assert!(p.healthy.is_empty() && p.conflicts.is_empty());
    }

    #[test]
    fn healthy_tunnels_are_left_alone() {
        let b = spec("b", "10.0.0.2");
        let c = spec("c", "10.0.0.3");
        let p = plan(
            &want(&[b.clone(), c.clone()]),
            &healthy(&[(&b, 1), (&c, 2)]),
        );
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert_eq!(p.healthy, [b.name, c.name].into());
    }

    #[test]
    fn wrong_remote_recreates_only_that_tunnel() {
        let b = spec("b", "10.0.0.2");
        let c = spec("c", "10.0.0.3");
        let mut seen = healthy(&[(&b, 1), (&c, 2)]);
        if let Some(v) = seen.links.get_mut(&b.name).unwrap().vxlan.as_mut() {
            v.remote = Some("10.9.9.9".parse().unwrap());
        }
        let p = plan(&want(&[b.clone(), c.clone()]), &seen);
        assert_eq!(
            kinds(&p),
            sorted(vec![
                ("del-port", b.name.clone()),
                ("del-dev", b.name.clone()),
                ("create-dev", b.name.clone()),
                ("add-port", b.name.clone()),
            ])
        );
        assert_eq!(p.healthy, [c.name].into());
        match &p.actions[1] {
            Action::DeleteDevice { reason, index, .. } => {
                assert!(reason.contains("remote"), "{reason}");
                assert_eq!(*index, 1);
            }
            a => panic!("{a:?}"),
        }
    }

    #[test]
    fn each_vxlan_parameter_is_checked() {
        let b = spec("b", "10.0.0.2");
        let edits: Vec<(&str, Edit<VxlanParams>)> = vec![
            ("vni", Box::new(|v| v.vni = 7)),
            (
                "local",
                Box::new(|v| v.local = Some("10.0.0.99".parse().unwrap())),
            ),
            ("dstport", Box::new(|v| v.port = 8472)),
            ("learning", Box::new(|v| v.learning = true)),
            ("remote", Box::new(|v| v.remote = None)),
        ];
        for (what, edit) in edits {
            let mut seen = healthy(&[(&b, 1)]);
            edit(seen.links.get_mut(&b.name).unwrap().vxlan.as_mut().unwrap());
            let p = plan(&want(std::slice::from_ref(&b)), &seen);
            assert_eq!(p.actions.len(), 4, "{what}: {:?}", p.actions);
            assert!(
                matches!(&p.actions[2], Action::CreateDevice { reason, .. } if reason.contains(what)),
                "{what}: {:?}",
                p.actions
            );
        }
        // Our alias on a non-vxlan link (someone replaced it): recreate.
        let mut seen = healthy(&[(&b, 1)]);
        let l = seen.links.get_mut(&b.name).unwrap();
        l.kind = Some("dummy".into());
        l.vxlan = None;
        assert_eq!(
            plan(&want(std::slice::from_ref(&b)), &seen).actions.len(),
            4
        );
    }

    #[test]
    fn mtu_and_down_are_fixed_in_place() {
        let b = spec("b", "10.0.0.2");
        let mut seen = healthy(&[(&b, 1)]);
        let l = seen.links.get_mut(&b.name).unwrap();
        l.info.mtu = 1450;
        l.info.up = false;
        let p = plan(&want(std::slice::from_ref(&b)), &seen);
        assert_eq!(
            p.actions,
            vec![Action::FixDevice {
                name: b.name.clone(),
                index: 1,
                mtu: Some(1500)
            }]
        );
        seen.links.get_mut(&b.name).unwrap().info.mtu = 1500;
        let p = plan(&want(std::slice::from_ref(&b)), &seen);
        assert_eq!(
            p.actions,
            vec![Action::FixDevice {
                name: b.name.clone(),
                index: 1,
                mtu: None
            }]
        );
    }

    #[test]
    fn foreign_objects_are_conflicts_and_untouched() {
        let b = spec("b", "10.0.0.2");
        let c = spec("c", "10.0.0.3");
        let mut seen = Observed::default();
        // A foreign dummy holding b's name.
        let mut l = device(&b, 5);
        l.alias = None;
        l.kind = Some("dummy".into());
        l.vxlan = None;
        seen.links.insert(b.name.clone(), l);
        // A foreign OVS port holding c's name.
        let mut pt = port(&c, 6);
        pt.external_ids.clear();
        seen.ports.insert(c.name.clone(), pt);
        // Foreign things with names nobody wants.
        let mut other = device(&spec("x", "10.0.0.9"), 7);
        other.alias = Some("someone else".into());
        seen.links.insert("wvforeign".into(), other);
        let mut pt = port(&spec("y", "10.0.0.8"), 8);
        pt.external_ids = [(keys::OWNER.to_string(), keys::OWNER_CNI.to_string())].into();
        seen.ports.insert("wfpod".into(), pt);

        let p = plan(&want(&[b.clone(), c.clone()]), &seen);
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        let mut names: Vec<&str> = p.conflicts.iter().map(|c| c.peer.as_str()).collect();
        names.sort();
        assert_eq!(names, vec!["b", "c"]);
        let why = |peer: &str| &p.conflicts.iter().find(|c| c.peer == peer).unwrap().why;
        assert!(why("b").contains("dummy"), "{}", why("b"));
        assert!(why("c").contains("OVS port"), "{}", why("c"));
    }

    #[test]
    fn unwanted_own_objects_are_removed() {
        let b = spec("b", "10.0.0.2");
        let gone = spec("gone", "10.0.0.4");
        let seen = healthy(&[(&b, 1), (&gone, 2)]);
        let p = plan(&want(std::slice::from_ref(&b)), &seen);
        assert_eq!(
            kinds(&p),
            sorted(vec![
                ("del-port", gone.name.clone()),
                ("del-dev", gone.name.clone())
            ])
        );
        // Nothing wanted at all: everything of ours goes.
        let p = plan(&BTreeMap::new(), &seen);
        assert_eq!(p.actions.len(), 4);
    }

    #[test]
    fn half_made_tunnels_are_completed() {
        let b = spec("b", "10.0.0.2");
        let c = spec("c", "10.0.0.3");
        let mut seen = healthy(&[(&b, 1), (&c, 2)]);
        // b: device without port (crash between create and plug).
        seen.ports.remove(&b.name);
        // c: port without device (device deleted by hand).
        seen.links.remove(&c.name);
        let p = plan(&want(&[b.clone(), c.clone()]), &seen);
        assert_eq!(
            kinds(&p),
            sorted(vec![
                ("del-port", c.name.clone()),
                ("create-dev", c.name.clone()),
                ("add-port", b.name.clone()),
                ("add-port", c.name.clone()),
            ])
        );
    }

    #[test]
    fn wrong_ports_are_replugged() {
        let b = spec("b", "10.0.0.2");
        let cases: Vec<(&str, Edit<ObservedPort>)> = vec![
            ("bridge", Box::new(|p| p.in_bridge = false)),
            (
                "peer",
                Box::new(|p| {
                    p.external_ids.insert(PEER_KEY.into(), "zz".into());
                }),
            ),
            ("type", Box::new(|p| p.ifaces[0].1 = "internal".into())),
            (
                "ifaces",
                Box::new(|p| p.ifaces.push(("x".into(), String::new()))),
            ),
        ];
        for (what, edit) in cases {
            let mut seen = healthy(&[(&b, 1)]);
            edit(seen.ports.get_mut(&b.name).unwrap());
            let p = plan(&want(std::slice::from_ref(&b)), &seen);
            assert_eq!(
                kinds(&p),
                vec![("del-port", b.name.clone()), ("add-port", b.name.clone())],
                "{what}"
            );
        }
        // "system" is the explicit spelling of the default type.
        let mut seen = healthy(&[(&b, 1)]);
        seen.ports.get_mut(&b.name).unwrap().ifaces[0].1 = "system".into();
        assert!(
            plan(&want(std::slice::from_ref(&b)), &seen)
                .actions
                .is_empty()
        );
    }

    #[test]
    fn ipv6_tunnels_compare_by_address() {
        let mut b = spec("b", "fd00::2");
        b.local = "fd00::1".parse::<IpAddr>().unwrap();
        let seen = healthy(&[(&b, 1)]);
        assert!(
            plan(&want(std::slice::from_ref(&b)), &seen)
                .actions
                .is_empty()
        );
    }
}
