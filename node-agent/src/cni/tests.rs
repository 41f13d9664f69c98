//! The CNI server over fakes (no root): ADD's rollback, DEL's idempotence, restarts, hang-ups.

use super::fakes::{FakeController, FakeLinks, FakePorts, World};
use super::*;
use std::time::Duration;
use tokio::sync::Notify;
use tonic::Request;
use weft_proto::cni::v1::cni_server::Cni;
use weft_proto::common::v1 as common;

const NETNS: &str = "/fake/netns/pod1";
const OTHER_NETNS: &str = "/fake/netns/pod2";

type FakeService = CniService<FakePorts, FakeLinks, FakeController>;

struct Rig {
    world: Arc<World>,
    dir: tempfile::TempDir,
    svc: FakeService,
}

fn config(dir: &Path) -> CniConfig {
    let mut c = CniConfig::new("node1", "http://127.0.0.1:9");
    c.state_dir = dir.join("state");
    c.attach_timeout = Duration::from_secs(5);
    c.controller_timeout = Duration::from_secs(5);
    c.gc_interval = None;
    c
}

fn service(world: &Arc<World>, cfg: CniConfig) -> FakeService {
    CniService::from_parts(
        cfg,
        FakePorts(world.clone()),
        FakeLinks(world.clone()),
        FakeController(world.clone()),
    )
    .unwrap()
}

fn rig() -> Rig {
    let world = Arc::new(World::default());
    world.state().namespaces.insert(NETNS.to_string());
    world.state().namespaces.insert(OTHER_NETNS.to_string());
    let dir = tempfile::tempdir().unwrap();
    let svc = service(&world, config(dir.path()));
    Rig { world, dir, svc }
}

fn request() -> pb::CniRequest {
    pb::CniRequest {
        container_id: "c0ffee".into(),
        ifname: "net1".into(),
        netns: NETNS.into(),
        network: "default/blue".into(),
        pod: Some(common::PodRef {
            namespace: "default".into(),
            name: "upf-0".into(),
            uid: "u-1".into(),
        }),
        ..Default::default()
    }
}

async fn call(svc: &FakeService, command: &str, r: pb::CniRequest) -> pb::CniReply {
    let r = Request::new(r);
    let reply = match command {
        "ADD" => svc.add(r).await,
        "DEL" => svc.del(r).await,
        "CHECK" => svc.check(r).await,
        "GC" => svc.gc(r).await,
        other => panic!("no command {other}"),
    };
    reply.unwrap().into_inner()
}

fn code(reply: &pb::CniReply) -> u32 {
    reply.error.as_ref().map_or(0, |e| e.code)
}

impl Rig {
    /// Everything an attachment holds anywhere; empty when nothing is left.
    async fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        {
            let s = self.world.state();
            left.extend(s.veths.keys().map(|k| format!("veth {k}")));
            left.extend(s.ports.keys().map(|k| format!("port {k}")));
            left.extend(s.reserved.iter().map(|k| format!("reservation {k:?}")));
            left.extend(s.attached.iter().map(|k| format!("attachment {k:?}")));
        }
        let state = self.dir.path().join("state");
        for e in std::fs::read_dir(&state).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "json") {
                left.push(format!("record {}", e.path().display()));
            }
        }
        for e in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("lease-") {
                left.push(name);
            }
        }
        let numbers = self.svc.inner.numbers.lock().await;
        if let Some(n) = numbers.as_ref().filter(|n| n.taken() > 0) {
            left.push(format!("{} port numbers", n.taken()));
        }
        left
    }

    /// Attaches the usual pod and a second one in another namespace; returns the second's request.
    async fn add_two_pods(&self) -> pb::CniRequest {
        let other = pb::CniRequest {
            container_id: "beef".into(),
            netns: OTHER_NETNS.into(),
            ..request()
        };
        for r in [request(), other.clone()] {
            let reply = call(&self.svc, "ADD", r).await;
            assert_eq!(code(&reply), 0, "{:?}", reply.error);
        }
        other
    }

    /// Waits (bounded) for a rollback running on its own task to finish.
    async fn settled(&self) -> Vec<String> {
        for _ in 0..500 {
            let left = self.leftovers().await;
            if left.is_empty() {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.leftovers().await
    }

    /// A delegated IPAM plugin: a script that keeps one lease file per container beside the
    /// state directory and fails ADD while `ipam-fails` exists there.
    fn ipam_plugin(&self) -> pb::CniRequest {
        use std::os::unix::fs::PermissionsExt;
        let d = self.dir.path().display();
        let script = format!(
            r#"#!/bin/sh
cat >/dev/null
case "$CNI_COMMAND" in
ADD)
  if [ -e {d}/ipam-fails ]; then echo '{{"code":7,"msg":"pool exhausted"}}'; exit 1; fi
  touch {d}/lease-$CNI_CONTAINERID
  echo '{{"cniVersion":"1.0.0","ips":[{{"address":"10.9.0.5/24","gateway":"10.9.0.1"}}],"routes":[{{"dst":"0.0.0.0/0"}}]}}'
  ;;
DEL) rm -f {d}/lease-$CNI_CONTAINERID ;;
esac
"#
        );
        let bin = self.dir.path().join("fake-ipam");
        std::fs::write(&bin, script).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        pb::CniRequest {
            ipam_type: "fake-ipam".into(),
            ipam_config: br#"{"type":"fake-ipam"}"#.to_vec(),
            cni_path: vec![self.dir.path().display().to_string()],
            ..request()
        }
    }
}

#[tokio::test]
async fn add_check_then_del_twice_leaves_nothing() {
    let rig = rig();
    let reply = call(&rig.svc, "ADD", request()).await;
    assert_eq!(code(&reply), 0, "{:?}", reply.error);
    let result = reply.result.unwrap();
    assert_eq!(result.interfaces[1].mac, "02:00:00:00:00:05");
    assert_eq!(result.ips[0].address, "10.1.0.5/24");
    assert_eq!(result.ips[0].gateway, "10.1.0.1");
    assert_eq!(
        rig.leftovers().await.len(),
        6,
        "veth, port, reservation, attachment, record, number"
    );
    assert!(rig.world.state().veths.values().all(|v| v.up));

    assert_eq!(code(&call(&rig.svc, "CHECK", request()).await), 0);
    for _ in 0..2 {
        let reply = call(&rig.svc, "DEL", request()).await;
        assert_eq!(code(&reply), 0, "{:?}", reply.error);
        assert_eq!(rig.leftovers().await, Vec::<String>::new());
    }
    let check = call(&rig.svc, "CHECK", request()).await;
    assert_eq!(code(&check), ErrorCode::CheckFailed.value());
}

#[tokio::test]
async fn every_step_failing_in_turn_leaves_nothing() {
    let cases = [
        ("open_pod", ErrorCode::InvalidEnvironment),
        ("pod_link", ErrorCode::LinkFailed),
        ("prepare", ErrorCode::TryAgain),
        ("delete_veth", ErrorCode::LinkFailed),
        ("create_veth", ErrorCode::LinkFailed),
        ("port_numbers", ErrorCode::OvsFailed),
        ("configure_pod", ErrorCode::LinkFailed),
        ("add_port", ErrorCode::OvsFailed),
        ("attach", ErrorCode::ControllerError),
    ];
    for (op, want) in cases {
        let rig = rig();
        rig.world.fail_once(op);
        let reply = call(&rig.svc, "ADD", request()).await;
        assert_eq!(code(&reply), want.value(), "{op}: {:?}", reply.error);
        assert!(rig.world.state().calls.contains(&op), "{op} never ran");
        assert_eq!(
            rig.leftovers().await,
            Vec::<String>::new(),
            "after {op} failed"
        );
        // And the attachment can be made afterwards: nothing stale is in the way.
        assert_eq!(
            code(&call(&rig.svc, "ADD", request()).await),
            0,
            "retry after {op}"
        );
    }
}

#[tokio::test]
async fn a_record_that_cannot_be_saved_rolls_back() {
    let rig = rig();
    let r = request();
    // A directory where the record's temporary file goes: the write fails, even for root.
    let tmp = rig
        .dir
        .path()
        .join("state")
        .join(format!("{}_{}.tmp", r.container_id, r.ifname));
    std::fs::create_dir_all(&tmp).unwrap();
    let reply = call(&rig.svc, "ADD", r).await;
    assert_eq!(
        code(&reply),
        ErrorCode::IoFailure.value(),
        "{:?}",
        reply.error
    );
    assert_eq!(rig.leftovers().await, Vec::<String>::new());
}

#[tokio::test]
async fn flows_never_confirmed_roll_back() {
    let world = Arc::new(World::default());
    world.state().namespaces.insert(NETNS.to_string());
    *world.attach_gate.lock().unwrap() = Some(Arc::new(Notify::new()));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.attach_timeout = Duration::from_millis(100);
    let rig = Rig {
        svc: service(&world, cfg),
        world,
        dir,
    };
    let reply = call(&rig.svc, "ADD", request()).await;
    assert_eq!(code(&reply), ErrorCode::FlowsNotConfirmed.value());
    assert_eq!(rig.leftovers().await, Vec::<String>::new());
}

#[tokio::test]
async fn delegated_ipam_lease_is_released_by_rollback_and_by_del() {
    let rig = rig();
    let r = rig.ipam_plugin();

    std::fs::write(rig.dir.path().join("ipam-fails"), "").unwrap();
    let reply = call(&rig.svc, "ADD", r.clone()).await;
    assert_eq!(
        code(&reply),
        ErrorCode::IpamFailed.value(),
        "{:?}",
        reply.error
    );
    assert!(reply.error.unwrap().msg.contains("pool exhausted"));
    assert_eq!(rig.leftovers().await, Vec::<String>::new());
    std::fs::remove_file(rig.dir.path().join("ipam-fails")).unwrap();

    // A lease taken, then the controller refuses: the lease goes back.
    rig.world.fail_once("prepare");
    let reply = call(&rig.svc, "ADD", r.clone()).await;
    assert_eq!(
        code(&reply),
        ErrorCode::TryAgain.value(),
        "{:?}",
        reply.error
    );
    assert_eq!(rig.leftovers().await, Vec::<String>::new());

    let reply = call(&rig.svc, "ADD", r.clone()).await;
    assert_eq!(code(&reply), 0, "{:?}", reply.error);
    let result = reply.result.unwrap();
    assert_eq!(result.ips[0].address, "10.9.0.5/24");
    assert_eq!(result.routes[0].dst, "0.0.0.0/0");
    let routes = rig
        .world
        .state()
        .veths
        .values()
        .next()
        .unwrap()
        .config
        .routes
        .clone();
    assert_eq!(routes[0].gateway, "10.9.0.1".parse().ok());
    assert!(rig.dir.path().join("lease-c0ffee").exists());

    // DEL without the IPAM configuration (a runtime that forgot it): the record has it.
    let bare = pb::CniRequest {
        ipam_type: String::new(),
        ipam_config: Vec::new(),
        cni_path: Vec::new(),
        ..r
    };
    assert_eq!(code(&call(&rig.svc, "DEL", bare).await), 0);
    assert_eq!(rig.leftovers().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_add_gets_everything_rolled_back() {
    let rig = rig();
    let gate = Arc::new(Notify::new());
    *rig.world.attach_gate.lock().unwrap() = Some(gate.clone());
    let svc = rig.svc.clone();
    let add = tokio::spawn(async move { svc.add(Request::new(request())).await });
    rig.world.attach_entered.notified().await;
    // The runtime gives up while the controller is installing flows...
    add.abort();
    assert!(add.await.unwrap_err().is_cancelled());
    // ...and then the controller confirms them: the ADD must still undo itself.
    gate.notify_one();
    assert_eq!(rig.settled().await, Vec::<String>::new());
    let calls = rig.world.state().calls.clone();
    assert!(
        calls.contains(&"attach") && calls.contains(&"detach"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn del_and_gc_after_an_agent_restart() {
    let rig = rig();
    rig.add_two_pods().await;
    // A new agent over the same state directory and the same node.
    let Rig { world, dir, svc } = rig;
    drop(svc);
    let rig = Rig {
        svc: service(&world, config(dir.path())),
        world,
        dir,
    };
    assert_eq!(code(&call(&rig.svc, "DEL", request()).await), 0);
    // The other pod's namespace vanished without a DEL: the agent's own GC removes it.
    rig.world.state().namespaces.remove(OTHER_NETNS);
    assert_eq!(rig.svc.collect_orphans().await, 1);
    assert_eq!(rig.leftovers().await, Vec::<String>::new());
    // The first pod's attachment can be made again.
    assert_eq!(code(&call(&rig.svc, "ADD", request()).await), 0);
}

#[tokio::test]
async fn a_second_add_for_the_same_attachment_changes_nothing() {
    let rig = rig();
    assert_eq!(code(&call(&rig.svc, "ADD", request()).await), 0);
    let before = rig.leftovers().await;
    let reply = call(&rig.svc, "ADD", request()).await;
    assert_eq!(code(&reply), ErrorCode::InterfaceExists.value());
    assert_eq!(rig.leftovers().await, before);
    assert_eq!(code(&call(&rig.svc, "CHECK", request()).await), 0);
}

#[tokio::test]
async fn gc_keeps_valid_attachments_and_removes_the_rest() {
    let rig = rig();
    let other = rig.add_two_pods().await;
    let gc = pb::CniRequest {
        valid_attachments: vec![common::AttachmentId {
            container_id: "beef".into(),
            ifname: "net1".into(),
        }],
        ..request()
    };
    assert_eq!(code(&call(&rig.svc, "GC", gc).await), 0);
    assert_eq!(code(&call(&rig.svc, "CHECK", other).await), 0);
    assert_eq!(
        code(&call(&rig.svc, "CHECK", request()).await),
        ErrorCode::CheckFailed.value()
    );
    let s = rig.world.state();
    assert_eq!(s.veths.len(), 1);
    assert_eq!(s.attached.len(), 1);
}

#[test]
fn host_names_are_short_stable_and_distinct() {
    let a = host_ifname("abc", "net1");
    assert_eq!(a.len(), 14);
    assert_eq!(a, host_ifname("abc", "net1"));
    assert_ne!(a, host_ifname("abc", "net2"));
    assert_ne!(a, host_ifname("abcn", "et1"));
    assert!(weft_proto::cni::valid_ifname(&a));
}
