//! Conformance through the reference runtime: a libcni (1.1.2, Debian's
//! golang-github-appc-cni-dev) driver runs VERSION/ADD/CHECK/DEL against the real `weft-cni`
//! binary and the agent's CNI server: a 0.4.0 network, a 1.0.0 conflist chaining Debian's
//! `tuning` after `weft` (prevResult flows through), and a network whose `ipam` is `host-local`.

mod cni_support;

use cni_support::{Node, links, netns_path};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn require(what: &str) -> bool {
    if std::env::var("WEFT_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
        panic!("cni_conformance: WEFT_REQUIRE_PRIVILEGED=1 but {what}");
    }
    println!("skipped: cni_conformance: {what}");
    false
}

/// The driver and the plugin binary, or `None` (after printing why).
fn tools(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cni-conformance/build.sh");
    for p in ["/usr/lib/cni/tuning", "/usr/lib/cni/host-local"] {
        if !Path::new(p).exists() {
            return require(&format!("{p} missing (containernetworking-plugins)"))
                .then_some(None)?;
        }
    }
    let driver = dir.join("cni-driver");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(&driver)
        .output()
        .unwrap();
    if !out.status.success() {
        let why = format!(
            "driver build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return require(&why).then_some(None)?;
    }
    let weft_cni = cni_support::weft_cni_binary();
    let plugin_dir = dir.join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    std::os::unix::fs::symlink(weft_cni, plugin_dir.join("weft")).unwrap();
    Some((driver, plugin_dir))
}

struct Driver {
    bin: PathBuf,
    path: String,
    cache: PathBuf,
    dir: PathBuf,
}

impl Driver {
    async fn run(
        &self,
        op: &str,
        conf: &Value,
        file: &str,
        netns: &str,
        id: &str,
        cap: &str,
    ) -> Result<String, String> {
        let conf_path = self.dir.join(file);
        std::fs::write(&conf_path, conf.to_string()).unwrap();
        let out = tokio::process::Command::new(&self.bin)
            .args([
                "-op", op, "-netns", netns, "-id", id, "-ifname", "net1", "-path", &self.path,
            ])
            .arg("-cache")
            .arg(&self.cache)
            .arg("-conf")
            .arg(&conf_path)
            .args([
                "-args",
                &format!(
                    "IgnoreUnknown=1;K8S_POD_NAMESPACE=red;K8S_POD_NAME=p-{id};K8S_POD_UID=u-{id}"
                ),
            ])
            .args(["-cap", cap])
            .output()
            .await
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cni_conformance_via_libcni() {
    let Some(node) = Node::start("cni_conformance_via_libcni").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some((bin, plugins)) = tools(dir.path()) else {
        return;
    };
    let d = Driver {
        bin,
        path: format!("{}:/usr/lib/cni", plugins.display()),
        cache: dir.path().join("cache"),
        dir: dir.path().to_path_buf(),
    };
    let sock = node.socket().display().to_string();
    let before = node.snapshot();

    // 0.4.0, single network, MAC and IP through capabilities (as Multus passes them).
    let pod = node.pod();
    let ns = netns_path(&pod);
    let conf = json!({"cniVersion": "0.4.0", "name": "red", "type": "weft", "network": "red/red",
                      "socketPath": sock, "capabilities": {"mac": true, "ips": true}});
    let caps = d
        .run("validate", &conf, "red.conf", "", "", "")
        .await
        .unwrap();
    assert!(caps.contains("mac") && caps.contains("ips"), "{caps}");
    let cap = r#"{"mac": "02:00:00:00:ab:01", "ips": ["10.77.0.80/24"]}"#;
    let res: Value = serde_json::from_str(
        &d.run("add", &conf, "red.conf", &ns, "v040", cap)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(res["cniVersion"], "0.4.0");
    assert_eq!(res["ips"][0]["address"], "10.77.0.80/24");
    assert_eq!(res["ips"][0]["version"], "4");
    let pod_if = &res["interfaces"][res["ips"][0]["interface"].as_u64().unwrap() as usize];
    assert_eq!(
        (pod_if["name"].as_str(), pod_if["mac"].as_str()),
        (Some("net1"), Some("02:00:00:00:ab:01"))
    );
    d.run("check", &conf, "red.conf", &ns, "v040", cap)
        .await
        .unwrap();
    d.run("del", &conf, "red.conf", &ns, "v040", cap)
        .await
        .unwrap();
    d.run("del", &conf, "red.conf", &ns, "v040", cap)
        .await
        .unwrap();
    assert_eq!(node.snapshot(), before);
    assert_eq!(links(&pod), ["lo".to_string()].into());

    // 1.0.0 conflist: weft, then tuning (which needs weft's result as prevResult).
    let list = json!({"cniVersion": "1.0.0", "name": "red", "plugins": [
        {"type": "weft", "network": "red/red", "socketPath": sock},
        {"type": "tuning", "mtu": 1280, "sysctl": {"net.ipv4.conf.net1.arp_ignore": "1"}}]});
    d.run("validate", &list, "red.conflist", "", "", "")
        .await
        .unwrap();
    let res: Value = serde_json::from_str(
        &d.run("add", &list, "red.conflist", &ns, "v100", "")
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(res["cniVersion"], "1.0.0");
    assert!(
        res["ips"][0]["address"]
            .as_str()
            .unwrap()
            .starts_with("10.77.0."),
        "{res}"
    );
    assert!(
        res["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "net1")
    );
    let link = pod
        .exec(&["ip", "-o", "link", "show", "dev", "net1"])
        .unwrap();
    assert!(
        link.contains("mtu 1280"),
        "tuning ran on weft's interface: {link}"
    );
    d.run("check", &list, "red.conflist", &ns, "v100", "")
        .await
        .unwrap();
    d.run("del", &list, "red.conflist", &ns, "v100", "")
        .await
        .unwrap();
    assert_eq!(node.snapshot(), before);

    // 1.0.0 with ipam delegated to host-local.
    let leases = dir.path().join("leases");
    let ipam = json!({"cniVersion": "1.0.0", "name": "l2", "type": "weft", "network": "red/l2",
                      "socketPath": sock,
                      "ipam": {"type": "host-local", "dataDir": leases, "ranges": [[{"subnet": "10.80.0.0/24"}]],
                               "routes": [{"dst": "10.81.0.0/16"}]}});
    let res: Value = serde_json::from_str(
        &d.run("add", &ipam, "l2.conf", &ns, "ipam", "")
            .await
            .unwrap(),
    )
    .unwrap();
    let addr = res["ips"][0]["address"].as_str().unwrap().to_string();
    assert!(
        addr.starts_with("10.80.0.") && addr.ends_with("/24"),
        "{res}"
    );
    let routes = pod.exec(&["ip", "route"]).unwrap();
    assert!(
        routes.contains("10.81.0.0/16 via 10.80.0.1"),
        "host-local route installed: {routes}"
    );
    d.run("check", &ipam, "l2.conf", &ns, "ipam", "")
        .await
        .unwrap();
    d.run("del", &ipam, "l2.conf", &ns, "ipam", "")
        .await
        .unwrap();
    let ip = addr.trim_end_matches("/24");
    let leased = std::fs::read_dir(leases.join("l2"))
        .map(|d| d.flatten().any(|e| e.file_name() == ip))
        .unwrap_or(false);
    assert!(!leased, "host-local lease released");
    assert_eq!(node.snapshot(), before);
    assert_eq!(links(&pod), ["lo".to_string()].into());
}
