//! The plugin's contract without an agent: every bad input gets its spec error code, good input
//! reaches the agent with the right request, and arbitrary input never panics.

use proptest::prelude::*;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::HashMap;
use weft_cni::{Agent, Command, run};
use weft_proto::cni::ErrorCode;
use weft_proto::cni::v1 as pb;

/// Records requests; answers with a fixed reply, or fails like an unreachable agent.
struct FakeAgent {
    reply: Result<pb::CniReply, String>,
    seen: RefCell<Vec<(String, Command, pb::CniRequest)>>,
}

impl FakeAgent {
    fn ok() -> Self {
        FakeAgent {
            reply: Ok(pb::CniReply {
                result: Some(pb::CniResult {
                    interfaces: vec![pb::Interface {
                        name: "net1".into(),
                        mac: "02:00:00:00:00:05".into(),
                        sandbox: "/run/netns/p".into(),
                        mtu: 1450,
                    }],
                    ips: vec![pb::IpConfig {
                        address: "10.1.0.5/24".into(),
                        gateway: "10.1.0.1".into(),
                        interface: 0,
                    }],
                    ..Default::default()
                }),
                error: None,
            }),
            seen: RefCell::new(Vec::new()),
        }
    }
    fn down() -> Self {
        FakeAgent {
            reply: Err("connection refused".into()),
            seen: RefCell::new(Vec::new()),
        }
    }
}

impl Agent for FakeAgent {
    fn call(&self, socket: &str, c: Command, r: pb::CniRequest) -> Result<pb::CniReply, String> {
        self.seen.borrow_mut().push((socket.to_string(), c, r));
        self.reply.clone()
    }
}

fn env(cmd: &str) -> HashMap<String, String> {
    [
        ("CNI_COMMAND", cmd),
        ("CNI_CONTAINERID", "abc123"),
        ("CNI_NETNS", "/run/netns/p"),
        ("CNI_IFNAME", "net1"),
        ("CNI_PATH", "/usr/lib/cni:/opt/cni/bin"),
        (
            "CNI_ARGS",
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=red;K8S_POD_NAME=p;K8S_POD_UID=u-1;FOO=bar",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn conf(version: &str) -> Value {
    json!({"cniVersion": version, "name": "red", "type": "weft", "network": "red/red"})
}

fn code_of(env: &HashMap<String, String>, stdin: &[u8]) -> ErrorCode {
    let out = run(env, stdin, &FakeAgent::ok());
    assert_ne!(out.exit_code, 0, "expected an error, got {}", out.stdout);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    ErrorCode::from(v["code"].as_u64().unwrap() as u32)
}

#[test]
fn add_sends_request_and_renders_result_per_version() {
    for version in weft_cni::SUPPORTED_VERSIONS {
        let agent = FakeAgent::ok();
        let mut c = conf(version);
        c["runtimeConfig"] = json!({"mac": "02:AA:00:00:00:01", "ips": ["10.1.0.9/24"]});
        c["args"] = json!({"cni": {"ips": ["10.1.0.7"], "mac": "02:00:00:00:00:02"}});
        c["mtu"] = json!(1400);
        let out = run(&env("ADD"), c.to_string().as_bytes(), &agent);
        assert_eq!(out.exit_code, 0, "{}", out.stdout);
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["cniVersion"], *version);
        assert_eq!(v["ips"][0]["address"], "10.1.0.5/24");
        assert_eq!(
            v["ips"][0].get("version").is_some(),
            version.starts_with("0.")
        );
        assert_eq!(v["interfaces"][0].get("mtu").is_some(), *version == "1.1.0");
        let seen = agent.seen.borrow();
        let (socket, cmd, req) = &seen[0];
        assert_eq!(socket, "/run/weft/cni.sock");
        assert_eq!(*cmd, Command::Add);
        assert_eq!(
            req.mac, "02:aa:00:00:00:01",
            "runtimeConfig wins over args.cni"
        );
        assert_eq!(req.ips, vec!["10.1.0.9/24"]);
        assert_eq!(req.mtu, 1400);
        assert_eq!(req.network, "red/red");
        let pod = req.pod.clone().unwrap();
        assert_eq!((pod.namespace.as_str(), pod.uid.as_str()), ("red", "u-1"));
        assert_eq!(req.extra_args.get("FOO").map(String::as_str), Some("bar"));
        assert_eq!(req.cni_path, vec!["/usr/lib/cni", "/opt/cni/bin"]);
    }
}

#[test]
fn prev_result_is_passed_through_and_amended() {
    let agent = FakeAgent::ok();
    let mut c = conf("1.0.0");
    c["prevResult"] = json!({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth0", "sandbox": "/run/netns/p"}],
        "ips": [{"address": "192.168.5.2/24", "interface": 0}],
        "dns": {"nameservers": ["192.168.5.1"]}
    });
    let out = run(&env("ADD"), c.to_string().as_bytes(), &agent);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["interfaces"].as_array().unwrap().len(), 2);
    assert_eq!(v["ips"][1]["interface"], 1);
    assert_eq!(v["dns"]["nameservers"][0], "192.168.5.1");
}

#[test]
fn socket_from_config_then_env() {
    let agent = FakeAgent::ok();
    let mut c = conf("1.0.0");
    c["socketPath"] = json!("/tmp/a.sock");
    run(&env("DEL"), c.to_string().as_bytes(), &agent);
    let mut e = env("DEL");
    e.insert("WEFT_CNI_SOCKET".into(), "/tmp/b.sock".into());
    run(&e, c.to_string().as_bytes(), &agent);
    let seen = agent.seen.borrow();
    assert_eq!(seen[0].0, "/tmp/a.sock");
    assert_eq!(seen[1].0, "/tmp/b.sock");
}

#[test]
fn version_lists_supported_versions() {
    let out = run(
        &env("VERSION"),
        b"{\"cniVersion\":\"1.0.0\"}",
        &FakeAgent::down(),
    );
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(out.exit_code, 0);
    assert!(
        v["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("0.4.0"))
    );
}

#[test]
fn bad_environment_is_code_4() {
    let c = conf("1.0.0").to_string();
    for (key, val) in [
        ("CNI_COMMAND", None),
        ("CNI_COMMAND", Some("FROB")),
        ("CNI_NETNS", None),
        ("CNI_NETNS", Some("relative/path")),
        ("CNI_IFNAME", None),
        ("CNI_IFNAME", Some("a-name-longer-than-15")),
        ("CNI_IFNAME", Some("bad/name")),
        ("CNI_CONTAINERID", None),
        ("CNI_CONTAINERID", Some("-leading-dash")),
        ("CNI_ARGS", Some("K8S_POD_NAME=x;garbage")),
    ] {
        let mut e = env("ADD");
        match val {
            None => e.remove(key),
            Some(v) => e.insert(key.to_string(), v.to_string()),
        };
        assert_eq!(
            code_of(&e, c.as_bytes()),
            ErrorCode::InvalidEnvironment,
            "{key}={val:?}"
        );
    }
    // Malformed pairs are fine once IgnoreUnknown is set.
    let mut e = env("ADD");
    e.insert(
        "CNI_ARGS".into(),
        "IgnoreUnknown=true;garbage;K8S_POD_NAME=x".into(),
    );
    assert_eq!(run(&e, c.as_bytes(), &FakeAgent::ok()).exit_code, 0);
    // DEL needs no netns.
    let mut e = env("DEL");
    e.remove("CNI_NETNS");
    assert_eq!(run(&e, c.as_bytes(), &FakeAgent::ok()).exit_code, 0);
}

#[test]
fn bad_config_gets_its_code() {
    let e = env("ADD");
    assert_eq!(code_of(&e, b"{not json"), ErrorCode::Decode);
    assert_eq!(code_of(&e, b"[1,2]"), ErrorCode::Decode);
    assert_eq!(code_of(&e, b"{\"name\":\"x\"}"), ErrorCode::InvalidConfig);
    assert_eq!(
        code_of(&e, conf("0.2.0").to_string().as_bytes()),
        ErrorCode::IncompatibleVersion
    );
    assert_eq!(
        code_of(&env("CHECK"), conf("0.3.1").to_string().as_bytes()),
        ErrorCode::IncompatibleVersion
    );
    assert_eq!(
        code_of(&env("GC"), conf("1.0.0").to_string().as_bytes()),
        ErrorCode::IncompatibleVersion
    );
    let cases = [
        (
            json!({"runtimeConfig": {"mac": "zz:00:00:00:00:00"}}),
            ErrorCode::InvalidConfig,
        ),
        (
            json!({"runtimeConfig": {"ips": ["10.0.0.300/24"]}}),
            ErrorCode::InvalidConfig,
        ),
        (
            json!({"runtimeConfig": {"ips": ["10.0.0.3/33"]}}),
            ErrorCode::InvalidConfig,
        ),
        (json!({"mtu": 20}), ErrorCode::InvalidConfig),
        (
            json!({"ipam": {"subnet": "10.0.0.0/24"}}),
            ErrorCode::InvalidConfig,
        ),
        (json!({"network": "a/b/c"}), ErrorCode::InvalidConfig),
        (json!({"name": ""}), ErrorCode::InvalidConfig),
        (json!({"ipMasq": true}), ErrorCode::UnsupportedField),
        (
            json!({"prevResult": {"ips": [{"address": "nope"}]}}),
            ErrorCode::Decode,
        ),
    ];
    for (patch, want) in cases {
        let mut c = conf("1.0.0");
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        assert_eq!(code_of(&e, c.to_string().as_bytes()), want, "{patch}");
    }
}

#[test]
fn errors_carry_the_config_version_and_agent_down_is_try_again() {
    let out = run(
        &env("ADD"),
        conf("0.4.0").to_string().as_bytes(),
        &FakeAgent::down(),
    );
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["code"], ErrorCode::TryAgain.value());
    assert_eq!(v["cniVersion"], "0.4.0");
    let out = run(
        &env("STATUS"),
        conf("1.1.0").to_string().as_bytes(),
        &FakeAgent::down(),
    );
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["code"], ErrorCode::NotAvailable.value());
}

#[test]
fn gc_passes_valid_attachments() {
    let agent = FakeAgent::ok();
    let mut c = conf("1.1.0");
    c["cni.dev/valid-attachments"] = json!([{"containerID": "a", "ifname": "net1"}]);
    let e: HashMap<String, String> = [("CNI_COMMAND".to_string(), "GC".to_string())].into();
    let out = run(&e, c.to_string().as_bytes(), &agent);
    assert_eq!((out.exit_code, out.stdout.as_str()), (0, ""));
    assert_eq!(
        agent.seen.borrow()[0].2.valid_attachments[0].container_id,
        "a"
    );
}

/// Codes the plugin itself may print; agent-originated ones pass through unchanged.
const PLUGIN_CODES: &[u32] = &[1, 2, 4, 6, 7, 11, 50];

fn check_output(out: &weft_cni::Output, command: Option<&str>) -> Result<(), TestCaseError> {
    if out.exit_code == 0 {
        match command {
            Some("ADD") => {
                let v: Value = serde_json::from_str(&out.stdout)
                    .map_err(|e| TestCaseError::fail(format!("ADD result not JSON: {e}")))?;
                prop_assert!(v["cniVersion"].is_string());
                prop_assert!(v["interfaces"].is_array() && v["ips"].is_array());
            }
            Some("VERSION") => {
                let v: Value = serde_json::from_str(&out.stdout).unwrap();
                prop_assert!(v["supportedVersions"].is_array());
            }
            _ => prop_assert_eq!(out.stdout.as_str(), ""),
        }
    } else {
        prop_assert_eq!(out.exit_code, 1);
        let v: Value = serde_json::from_str(&out.stdout)
            .map_err(|e| TestCaseError::fail(format!("error not JSON: {e}: {}", out.stdout)))?;
        let code = v["code"].as_u64().unwrap_or(0) as u32;
        prop_assert!(
            PLUGIN_CODES.contains(&code),
            "code {code} in {}",
            out.stdout
        );
        prop_assert!(v["msg"].is_string() && v["cniVersion"].is_string());
    }
    Ok(())
}

fn env_strategy() -> impl Strategy<Value = HashMap<String, String>> {
    let key = prop_oneof![
        Just("CNI_COMMAND".to_string()),
        Just("CNI_CONTAINERID".to_string()),
        Just("CNI_NETNS".to_string()),
        Just("CNI_IFNAME".to_string()),
        Just("CNI_ARGS".to_string()),
        Just("CNI_PATH".to_string()),
        "[A-Z_]{1,12}",
    ];
    let val = prop_oneof![
        Just("ADD".to_string()),
        Just("DEL".to_string()),
        Just("CHECK".to_string()),
        Just("VERSION".to_string()),
        Just("GC".to_string()),
        Just("STATUS".to_string()),
        Just("/run/netns/x".to_string()),
        Just("IgnoreUnknown=1;K8S_POD_NAMESPACE=red;K8S_POD_UID=u".to_string()),
        "[a-z0-9]{1,20}",
        ".*",
    ];
    prop::collection::hash_map(key, val, 0..8)
}

/// JSON close to a real configuration, with random values where it matters.
fn config_strategy() -> impl Strategy<Value = Vec<u8>> {
    let any_json = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".*".prop_map(Value::from),
        prop::collection::vec(".*".prop_map(Value::from), 0..3).prop_map(Value::from),
    ];
    let keys = prop_oneof![
        Just("cniVersion"),
        Just("name"),
        Just("network"),
        Just("mtu"),
        Just("ipam"),
        Just("runtimeConfig"),
        Just("args"),
        Just("prevResult"),
        Just("socketPath"),
        Just("cni.dev/valid-attachments"),
    ];
    let versions = prop::sample::select(vec!["0.3.1", "0.4.0", "1.0.0", "1.1.0", "9.9.9"]);
    (versions, prop::collection::vec((keys, any_json), 0..6)).prop_map(|(v, kv)| {
        let mut c = json!({"cniVersion": v, "name": "red", "type": "weft"});
        for (k, val) in kv {
            c[k] = val;
        }
        c.to_string().into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_input_never_panics_and_always_answers_in_spec(
        env in env_strategy(),
        stdin in prop_oneof![prop::collection::vec(any::<u8>(), 0..200), config_strategy()],
        agent_up in any::<bool>(),
    ) {
        let agent = if agent_up { FakeAgent::ok() } else { FakeAgent::down() };
        let out = run(&env, &stdin, &agent);
        check_output(&out, env.get("CNI_COMMAND").map(String::as_str))?;
    }

    #[test]
    fn well_formed_env_with_random_config_answers_in_spec(
        cmd in prop::sample::select(vec!["ADD", "DEL", "CHECK", "GC", "STATUS"]),
        stdin in config_strategy(),
    ) {
        let out = run(&env(cmd), &stdin, &FakeAgent::ok());
        check_output(&out, Some(cmd))?;
    }
}
