//! `weftctl pod`: pods are network namespaces attached through the real `weft-cni` binary, called
//! the way Multus calls a delegate: `CNI_*` environment, `CNI_ARGS` with the `K8S_POD_*` keys, the
//! NetworkAttachmentDefinition's config on stdin with `runtimeConfig` (mac, ips), from the node's
//! (host) network namespace.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::lab::{LabState, PodAttachment, PodState, binary, pod_ns, validate_name};
use crate::net::split_key;
use crate::output::Table;
use crate::sys::{self, netns_add, netns_destroy};

/// What `pod run` asks for.
pub struct RunArgs<'a> {
    pub name: &'a str,
    pub node: &'a str,
    pub namespace: &'a str,
    pub nets: &'a [String],
    /// Per network (same order), `None`/empty = let the controller choose.
    pub ips: &'a [String],
    pub macs: &'a [String],
}

/// FNV-1a 64, to derive stable-looking ids without a random source.
fn fnv(data: &[u8], seed: u64) -> u64 {
    weft_types::hash::Fnv1a::seeded(seed).bytes(data).finish()
}

/// A pod UID (UUID-shaped) and a 64-hex sandbox container id, unique per call.
fn ids(lab: &str, pod: &str) -> (String, String) {
    let seed = sys::now_ms() ^ (u64::from(std::process::id()) << 32);
    let key = format!("{lab}/{pod}");
    let h: Vec<u64> = (0..4)
        .map(|i| fnv(key.as_bytes(), seed.wrapping_add(i)))
        .collect();
    let uid = format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h[0] >> 32,
        h[0] & 0xffff,
        h[1] & 0xfff,
        h[2] & 0xfff,
        h[3] & 0xffff_ffff_ffff
    );
    let cid = h.iter().map(|x| format!("{x:016x}")).collect::<String>();
    (uid, cid)
}

/// The NAD config the controller generates (`type: weft`, `network: ns/name`, capabilities),
/// plus the `runtimeConfig` Multus adds for the capabilities the pod's annotation uses.
pub fn nad_config(namespace: &str, name: &str, mac: Option<&str>, ips: &[String]) -> Value {
    let mut c = json!({
        "cniVersion": "1.0.0",
        "name": name,
        "type": "weft",
        "network": format!("{namespace}/{name}"),
        "capabilities": {"mac": true, "ips": true},
    });
    let mut rc = serde_json::Map::new();
    if let Some(m) = mac {
        rc.insert("mac".into(), json!(m));
    }
    if !ips.is_empty() {
        rc.insert("ips".into(), json!(ips));
    }
    if !rc.is_empty() {
        c["runtimeConfig"] = Value::Object(rc);
    }
    c
}

/// Outcome of one `weft-cni` call.
pub struct CniOutcome {
    pub exit_ok: bool,
    pub output: Value,
    pub elapsed: Duration,
}

/// Execs `weft-cni` inside the node's namespace with Multus's environment.
pub fn call_cni(
    lab: &LabState,
    pod: &PodState,
    command: &str,
    ifname: &str,
    config: &Value,
) -> Result<CniOutcome> {
    let cni = binary("weft-cni")?;
    let node = lab.node(&pod.node)?;
    let ns_path = format!("/run/netns/{}", node.ns);
    let ns_file = std::fs::File::open(&ns_path).with_context(|| format!("opening {ns_path}"))?;
    let ns_fd = ns_file.as_raw_fd();
    let cni_dir = cni
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let mut c = Command::new(&cni);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CNI_") {
            c.env_remove(k);
        }
    }
    c.env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", &pod.container_id)
        .env("CNI_NETNS", format!("/run/netns/{}", pod.ns))
        .env("CNI_IFNAME", ifname)
        .env(
            "CNI_ARGS",
            format!(
                "IgnoreUnknown=true;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
                pod.namespace, pod.name, pod.container_id, pod.uid
            ),
        )
        .env("CNI_PATH", format!("{cni_dir}:/opt/cni/bin:/usr/lib/cni"))
        .env("WEFT_CNI_SOCKET", lab.cni_socket(&pod.node))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setns is async-signal-safe; the fd stays open in the parent until spawn returns.
    unsafe {
        c.pre_exec(move || {
            if libc::setns(ns_fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = c
        .spawn()
        .with_context(|| format!("running {}", cni.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(config.to_string().as_bytes())?;
    }
    let out = child.wait_with_output()?;
    let elapsed = start.elapsed();
    drop(ns_file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let output = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap_or_else(|_| json!({"raw": stdout.trim()}))
    };
    Ok(CniOutcome {
        exit_ok: out.status.success(),
        output,
        elapsed,
    })
}

fn cni_error(o: &CniOutcome) -> String {
    format!(
        "CNI error {}: {}{}",
        o.output["code"],
        o.output["msg"].as_str().unwrap_or("(no message)"),
        o.output["details"]
            .as_str()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    )
}

/// MAC and addresses of `ifname` in a CNI result.
fn from_result(result: &Value, ifname: &str) -> (String, Vec<String>) {
    let ifaces = result["interfaces"].as_array().cloned().unwrap_or_default();
    let idx = ifaces
        .iter()
        .position(|i| i["name"] == ifname && i.get("sandbox").is_some())
        .or_else(|| ifaces.iter().position(|i| i["name"] == ifname));
    let mac = idx
        .and_then(|i| ifaces[i]["mac"].as_str())
        .unwrap_or("")
        .to_string();
    let ips = result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|ip| match (ip["interface"].as_u64(), idx) {
            (Some(i), Some(want)) => i as usize == want,
            _ => true,
        })
        .filter_map(|ip| ip["address"].as_str().map(String::from))
        .collect();
    (mac, ips)
}

/// `pod run`: namespace, then one ADD per network (`net1`, `net2`, ...). Any failure undoes the
/// earlier ADDs and removes the namespace.
pub fn run(lab_name: &str, a: &RunArgs) -> Result<PodState> {
    sys::require_root()?;
    validate_name("pod", a.name)?;
    if a.nets.is_empty() {
        bail!("--net: at least one network");
    }
    let _guard = crate::lab::lock(lab_name)?;
    let mut lab = LabState::load(lab_name)?;
    if lab.pods.contains_key(a.name) {
        bail!("pod {} already exists in lab {lab_name}", a.name);
    }
    lab.node(a.node)?;
    let ns = pod_ns(lab_name, a.name);
    if sys::netns_exists(&ns) {
        netns_destroy(&ns, Duration::from_secs(1))?;
    }
    let (uid, container_id) = ids(lab_name, a.name);
    let mut pod = PodState {
        name: a.name.to_string(),
        namespace: a.namespace.to_string(),
        node: a.node.to_string(),
        ns: ns.clone(),
        uid,
        container_id,
        attachments: Vec::new(),
    };
    netns_add(&ns)?;
    for (i, net) in a.nets.iter().enumerate() {
        let (nns, nname) = split_key(net, a.namespace);
        let ifname = format!("net{}", i + 1);
        let ips: Vec<String> = a
            .ips
            .get(i)
            .filter(|s| !s.is_empty())
            .map(|s| s.split('+').map(String::from).collect())
            .unwrap_or_default();
        let mac = a.macs.get(i).map(String::as_str).filter(|s| !s.is_empty());
        let config = nad_config(&nns, &nname, mac, &ips);
        let res = call_cni(&lab, &pod, "ADD", &ifname, &config);
        let failure = match res {
            Ok(o) if o.exit_ok => {
                let (mac, ips) = from_result(&o.output, &ifname);
                pod.attachments.push(PodAttachment {
                    network: format!("{nns}/{nname}"),
                    ifname,
                    mac,
                    ips,
                    add_ms: o.elapsed.as_secs_f64() * 1e3,
                    config,
                });
                continue;
            }
            Ok(o) => {
                // A failed ADD cleans up after itself; DEL it anyway, as a runtime would.
                let _ = call_cni(&lab, &pod, "DEL", &ifname, &config);
                anyhow::anyhow!("attaching {} to {nns}/{nname}: {}", a.name, cni_error(&o))
            }
            Err(e) => e,
        };
        for att in pod.attachments.iter().rev() {
            let _ = call_cni(&lab, &pod, "DEL", &att.ifname, &att.config);
        }
        let _ = netns_destroy(&ns, Duration::from_secs(1));
        return Err(failure);
    }
    lab.pods.insert(pod.name.clone(), pod.clone());
    lab.save()?;
    Ok(pod)
}

/// `pod rm`: DEL every attachment (newest first), then the namespace. A failing DEL keeps the pod
/// (so it can be retried) unless `force`.
pub fn rm(lab_name: &str, name: &str, force: bool) -> Result<()> {
    sys::require_root()?;
    let _guard = crate::lab::lock(lab_name)?;
    let mut lab = LabState::load(lab_name)?;
    let pod = lab
        .pods
        .get(name)
        .cloned()
        .with_context(|| format!("lab {lab_name} has no pod {name:?}"))?;
    let mut errors = Vec::new();
    for att in pod.attachments.iter().rev() {
        match call_cni(&lab, &pod, "DEL", &att.ifname, &att.config) {
            Ok(o) if o.exit_ok => {}
            Ok(o) => errors.push(format!("{}: {}", att.ifname, cni_error(&o))),
            Err(e) => errors.push(format!("{}: {e:#}", att.ifname)),
        }
    }
    if !errors.is_empty() && !force {
        bail!(
            "removing pod {name}: {} (pod kept; retry, or --force)",
            errors.join("; ")
        );
    }
    netns_destroy(&pod.ns, Duration::from_secs(1))?;
    lab.pods.remove(name);
    lab.save()?;
    Ok(())
}

/// `pod exec`: runs a command inside the pod's namespace with this terminal; returns its exit
/// code.
pub fn exec(lab_name: &str, name: &str, cmd: &[String]) -> Result<i32> {
    sys::require_root()?;
    let lab = LabState::load(lab_name)?;
    let pod = lab
        .pods
        .get(name)
        .with_context(|| format!("lab {lab_name} has no pod {name:?}"))?;
    let (program, rest) = cmd
        .split_first()
        .context("pod exec NAME -- CMD [ARGS...]")?;
    let resolved = sys::find_tool(program).unwrap_or_else(|| program.into());
    let status = sys::in_netns(&pod.ns, &resolved)?
        .args(rest)
        .status()
        .with_context(|| format!("running {program} in pod {name}"))?;
    Ok(status.code().unwrap_or(128 + 9))
}

pub fn render_pods(v: &Value) -> String {
    let mut t = Table::new(&["POD", "NODE", "NETWORK", "IFNAME", "MAC", "IPS", "ADD"]);
    for p in v.as_array().into_iter().flatten() {
        let name = format!(
            "{}/{}",
            p["namespace"].as_str().unwrap_or("-"),
            p["name"].as_str().unwrap_or("-")
        );
        for a in p["attachments"].as_array().into_iter().flatten() {
            let ips: Vec<&str> = a["ips"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            t.row(vec![
                name.clone(),
                p["node"].as_str().unwrap_or("-").into(),
                a["network"].as_str().unwrap_or("-").into(),
                a["ifname"].as_str().unwrap_or("-").into(),
                a["mac"].as_str().unwrap_or("-").into(),
                if ips.is_empty() {
                    "-".into()
                } else {
                    ips.join(",")
                },
                format!("{:.1} ms", a["addMs"].as_f64().unwrap_or(0.0)),
            ]);
        }
    }
    if t.is_empty() {
        return "no pods\n".into();
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nad_config_carries_runtime_config_only_when_asked() {
        let c = nad_config("default", "red", None, &[]);
        assert_eq!(c["network"], "default/red");
        assert_eq!(c["type"], "weft");
        assert!(c.get("runtimeConfig").is_none());
        let c = nad_config("a", "b", Some("02:00:00:00:00:01"), &["10.1.0.5/24".into()]);
        assert_eq!(c["runtimeConfig"]["mac"], "02:00:00:00:00:01");
        assert_eq!(c["runtimeConfig"]["ips"][0], "10.1.0.5/24");
    }

    #[test]
    fn reads_mac_and_ips_of_the_interface() {
        let r = json!({"interfaces":[{"name":"wf1"},{"name":"net1","mac":"02:aa","sandbox":"/run/netns/x"}],
            "ips":[{"address":"10.1.0.2/24","interface":1},{"address":"10.9.0.2/24","interface":0}]});
        assert_eq!(
            from_result(&r, "net1"),
            ("02:aa".into(), vec!["10.1.0.2/24".into()])
        );
    }

    #[test]
    fn ids_are_shaped_like_kubernetes_ones() {
        let (uid, cid) = ids("lab", "pod");
        assert_eq!(uid.len(), 36);
        assert_eq!(cid.len(), 64);
        assert!(cid.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
