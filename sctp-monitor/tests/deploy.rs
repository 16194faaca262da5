//! What deploy/ ships, checked with the tools an operator would use:
//!
//! - the Helm chart: `helm lint --strict`, `helm template` with the
//!   defaults and with every option, the rendered objects parsed and
//!   checked (host network, exactly CAP_BPF/CAP_NET_ADMIN/CAP_PERFMON, not
//!   privileged, probes on /readyz and /healthz, no service-account token,
//!   resources, Pod Security labels, the monitors and rules when enabled),
//!   validated against the Kubernetes schemas (`kubernetes-validate
//!   --strict`, which also rejects a broken manifest here), and
//!   deploy/kubernetes/daemonset.yaml equal to the chart's rendering;
//! - the listener's TLS and basic authentication in the chart, on by
//!   default: the certificate and credential it generates, put in files as
//!   Kubernetes mounts them, serve the agent's listener (`--web-config`),
//!   which curl reaches as the monitors' scrape config says (the CA, the
//!   server name, the user and password of the Secrets);
//! - the alert rules: `promtool check rules` and `promtool test rules`;
//! - the Grafana dashboard: a datasource variable used by every query,
//!   `$__rate_interval` in every rate, and every metric it or the rules
//!   name exists in what the agent exposes;
//! - the Dockerfile: hadolint.
//!
//! The tools come from `cargo xtask setup --tests` (helm and the Python
//! tools under /opt/sctp-monitor-tools). Missing ones fail under CI and
//! skip with a message elsewhere. No root needed.

mod support;

use std::{
    collections::BTreeSet,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use sctp_monitor::{
    agent::pipeline::{Pipeline, PipelineOptions},
    craft::{self, InitSpec},
    kernel::counters::Counters,
    sinks::events::EventWriter,
};
use sctp_monitor_common::ChunkRecord;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

const TOOLS: &str = "/opt/sctp-monitor-tools/venv/bin";

/// The tool's path, or `None` (after saying so; a panic under CI).
fn tool(name: &str) -> Option<PathBuf> {
    let venv = Path::new(TOOLS).join(name);
    if venv.exists() {
        return Some(venv);
    }
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "{name} is missing: `cargo xtask setup --tests` installs it");
        eprintln!("SKIPPED: {name} is missing (`cargo xtask setup --tests` installs it)");
    }
    found
}

/// Runs a command; (success, stdout, stderr).
fn run(cmd: &mut Command, stdin: Option<&str>) -> (bool, String, String) {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn chart() -> PathBuf {
    repo().join("deploy/helm/sctp-monitor")
}

/// `helm template` of the chart with `--set` values: the rendered YAML.
fn render(helm: &Path, sets: &[&str]) -> String {
    let mut cmd = Command::new(helm);
    cmd.args(["template", "sctp-monitor"]).arg(chart()).args(["--namespace", "sctp-monitor"]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let (ok, out, err) = run(&mut cmd, None);
    assert!(ok, "helm template {sets:?}: {err}");
    out
}

/// YAML documents as JSON values (PyYAML from the tools venv).
fn parse_yaml(yaml: &str) -> Vec<Value> {
    let py = tool("python3").expect("python3");
    let (ok, out, err) = run(
        Command::new(py).args([
            "-c",
            "import sys, json, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d is not None]))",
        ]),
        Some(yaml),
    );
    assert!(ok, "YAML does not parse: {err}");
    match serde_json::from_str(&out).expect("json") {
        Value::Array(v) => v,
        v => panic!("{v}"),
    }
}

fn kind<'a>(docs: &'a [Value], k: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == k).collect()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect()
}

#[test]
fn helm_chart_lints_renders_and_says_what_the_agent_needs() {
    let Some(helm) = tool("helm") else { return };
    let (ok, out, err) = run(Command::new(&helm).args(["lint", "--strict"]).arg(chart()), None);
    assert!(ok, "helm lint --strict: {out}{err}");

    let docs = parse_yaml(&render(&helm, &[]));
    let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["DaemonSet", "Namespace", "Secret", "ServiceAccount"]),
        "defaults render only these"
    );

    let ds = kind(&docs, "DaemonSet")[0];
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true, "the agent watches the node's interfaces");
    assert_eq!(pod["automountServiceAccountToken"], false);
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(
        strings(&sc["capabilities"]["add"]),
        BTreeSet::from(["BPF".into(), "NET_ADMIN".into(), "PERFMON".into()])
    );
    assert_eq!(strings(&sc["capabilities"]["drop"]), BTreeSet::from(["ALL".into()]));
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    // Default: non-root with the image's file capabilities.
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(sc["allowPrivilegeEscalation"], true, "file capabilities need no_new_privs off");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["startupProbe"]["httpGet"]["path"], "/healthz");
    for p in ["readinessProbe", "livenessProbe", "startupProbe"] {
        assert_eq!(c[p]["httpGet"]["port"], "metrics", "{p}");
    }
    assert_eq!(c["ports"][0]["name"], "metrics");
    assert_eq!(c["ports"][0]["containerPort"], 9108);
    assert!(c["resources"]["requests"]["cpu"].is_string() && c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string(), "a memory limit");
    let env: Vec<(String, String)> = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| (e["name"].as_str().unwrap_or("").to_string(), e["value"].as_str().unwrap_or("").to_string()))
        .collect();
    assert!(env.contains(&("SCTP_MONITOR_METRICS".into(), "$(NODE_IP):9108".into())), "{env:?}");
    assert!(!env.iter().any(|e| e.0 == "SCTP_MONITOR_IFACES"), "no -i by default");
    assert_eq!(c["args"], serde_json::json!(["run", "--web-config=/etc/sctp-monitor/web/web-config.yml"]));
    for p in ["readinessProbe", "livenessProbe", "startupProbe"] {
        assert_eq!(c[p]["httpGet"]["scheme"], "HTTPS", "{p}");
    }
    let mounts: BTreeSet<String> = c["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter_map(|m| m["mountPath"].as_str().map(String::from))
        .collect();
    assert!(mounts.contains("/etc/sctp-monitor/tls") && mounts.contains("/etc/sctp-monitor/web"), "{mounts:?}");
    for v in pod["volumes"].as_array().expect("volumes") {
        if let Some(name) = v["secret"]["secretName"].as_str() {
            assert!(kind(&docs, "Secret").iter().any(|s| s["metadata"]["name"] == name), "the chart makes {name}");
        }
    }
    let ns = kind(&docs, "Namespace")[0];
    assert_eq!(ns["metadata"]["name"], "sctp-monitor");
    assert_eq!(ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "privileged");
    assert_eq!(ns["metadata"]["labels"]["pod-security.kubernetes.io/warn"], "baseline");
    assert_eq!(kind(&docs, "ServiceAccount")[0]["automountServiceAccountToken"], false);

    // Every option.
    let docs = parse_yaml(&render(
        &helm,
        &[
            "podMonitor.enabled=true",
            "serviceMonitor.enabled=true",
            "prometheusRule.enabled=true",
            "interfaces={eth0,eth1}",
            "securityMode=root",
            "namespace.create=false",
            "image.tag=test",
        ],
    ));
    let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "DaemonSet",
            "PodMonitor",
            "PrometheusRule",
            "Secret",
            "Service",
            "ServiceAccount",
            "ServiceMonitor"
        ])
    );
    let pod = &kind(&docs, "DaemonSet")[0]["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsUser"], 0);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(strings(&c["securityContext"]["capabilities"]["add"]).len(), 3);
    assert!(c["image"].as_str().is_some_and(|i| i.ends_with(":test")));
    let ifaces = c["env"].as_array().expect("env").iter().find(|e| e["name"] == "SCTP_MONITOR_IFACES").expect("-i");
    assert_eq!(ifaces["value"], "eth0,eth1");
    let pm = kind(&docs, "PodMonitor")[0];
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["path"], "/metrics");
    // The monitors scrape as the listener asks: https, the chart's CA and
    // server name, the Secret's user and password.
    for ep in [&pm["spec"]["podMetricsEndpoints"][0], &kind(&docs, "ServiceMonitor")[0]["spec"]["endpoints"][0]] {
        assert_eq!(ep["scheme"], "https", "{ep}");
        assert_eq!(ep["tlsConfig"]["serverName"], "sctp-monitor.sctp-monitor.svc", "{ep}");
        assert_eq!(ep["tlsConfig"]["ca"]["secret"], serde_json::json!({"name": "sctp-monitor-tls", "key": "ca.crt"}));
        assert_eq!(ep["basicAuth"]["username"], serde_json::json!({"name": "sctp-monitor-web", "key": "username"}));
        assert_eq!(ep["basicAuth"]["password"], serde_json::json!({"name": "sctp-monitor-web", "key": "password"}));
    }
    let selector = &kind(&docs, "DaemonSet")[0]["spec"]["selector"]["matchLabels"];
    assert_eq!(&pm["spec"]["selector"]["matchLabels"], selector, "the PodMonitor selects the agent's pods");
    let svc_labels = &kind(&docs, "Service")[0]["metadata"]["labels"];
    let sm = kind(&docs, "ServiceMonitor")[0];
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().expect("ServiceMonitor selector") {
        assert_eq!(&svc_labels[k], v, "the ServiceMonitor selects the Service ({k})");
    }
    assert_eq!(&kind(&docs, "Service")[0]["spec"]["selector"], selector, "the Service selects the agent's pods");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    let rules = kind(&docs, "PrometheusRule")[0];
    let file =
        parse_yaml(&std::fs::read_to_string(repo().join("deploy/prometheus/sctp-monitor.rules.yml")).expect("rules"));
    assert_eq!(rules["spec"], file[0], "the PrometheusRule carries deploy/prometheus/sctp-monitor.rules.yml");

    // A bad value is refused.
    let (ok, _, err) =
        run(Command::new(&helm).args(["template", "x"]).arg(chart()).args(["--set", "securityMode=privileged"]), None);
    assert!(!ok && err.contains("securityMode must be"), "{err}");

    // The listener's security turned off: plain HTTP, and nothing of it rendered.
    let docs = parse_yaml(&render(&helm, &["webConfig.enabled=false", "podMonitor.enabled=true"]));
    assert!(kind(&docs, "Secret").is_empty());
    let c = &kind(&docs, "DaemonSet")[0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["args"], serde_json::json!(["run"]));
    assert!(c["readinessProbe"]["httpGet"]["scheme"].is_null());
    assert!(kind(&docs, "PodMonitor")[0]["spec"]["podMetricsEndpoints"][0]["scheme"].is_null());

    // Supplied Secrets, or cert-manager's: the chart makes only what is not supplied.
    let docs = parse_yaml(&render(&helm, &["webConfig.tls.secretName=mine", "webConfig.auth.existingSecret=creds"]));
    assert!(kind(&docs, "Secret").is_empty());
    let vols = &kind(&docs, "DaemonSet")[0]["spec"]["template"]["spec"]["volumes"];
    assert!(vols.as_array().expect("volumes").iter().any(|v| v["secret"]["secretName"] == "mine"), "{vols}");
    assert!(vols.as_array().expect("volumes").iter().any(|v| v["secret"]["secretName"] == "creds"), "{vols}");
    let (ok, _, err) = run(
        Command::new(&helm)
            .args(["template", "x"])
            .arg(chart())
            .args(["--set", "webConfig.tls.certManager.enabled=true"]),
        None,
    );
    assert!(!ok && err.contains("issuerRef.name"), "{err}");
    let docs = parse_yaml(&render(
        &helm,
        &["webConfig.tls.certManager.enabled=true", "webConfig.tls.certManager.issuerRef.name=ca-issuer"],
    ));
    let cert = kind(&docs, "Certificate")[0];
    assert_eq!(cert["spec"]["secretName"], "sctp-monitor-tls");
    assert_eq!(cert["spec"]["dnsNames"], serde_json::json!(["sctp-monitor.sctp-monitor.svc"]));
    assert_eq!(cert["spec"]["issuerRef"]["name"], "ca-issuer");
    let secrets: Vec<&Value> = kind(&docs, "Secret");
    assert_eq!(secrets.len(), 1, "only the credential; cert-manager writes the certificate");
    assert_eq!(secrets[0]["metadata"]["name"], "sctp-monitor-web");
}

/// The `data` of the rendered Secret `name`, decoded.
fn secret_data(docs: &[Value], name: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    use base64::Engine as _;
    let s = kind(docs, "Secret").into_iter().find(|s| s["metadata"]["name"] == name).expect("the Secret");
    s["data"]
        .as_object()
        .expect("data")
        .iter()
        .map(|(k, v)| {
            (k.clone(), base64::engine::general_purpose::STANDARD.decode(v.as_str().expect("base64")).expect("base64"))
        })
        .collect()
}

#[test]
fn the_charts_certificate_and_credential_serve_the_agents_listener() {
    let (Some(helm), Some(curl)) = (tool("helm"), tool("curl")) else { return };
    let docs = parse_yaml(&render(&helm, &[]));
    let tls = secret_data(&docs, "sctp-monitor-tls");
    let web = secret_data(&docs, "sctp-monitor-web");
    // The files as the pod sees them (the Secrets' keys under the mounts).
    let dir = support::process::TempDir::new("deploy-web");
    for k in ["tls.crt", "tls.key", "ca.crt"] {
        dir.write(k, &tls[k]);
    }
    let config = String::from_utf8(web["web-config.yml"].clone()).expect("UTF-8");
    assert!(config.contains("/etc/sctp-monitor/tls/tls.crt"), "{config}");
    let config = config.replace("/etc/sctp-monitor/tls/", &format!("{}/", dir.0.display()));
    let config = sctp_monitor::sinks::webconfig::WebConfig::parse(&config, &dir.0).expect("the agent reads it");
    let security = sctp_monitor::sinks::http::Security::from_config(&config).expect("the certificate loads");
    assert!(security.tls.is_some() && security.auth.is_some());
    let addr = support::listener::start(sctp_monitor::sinks::http::Limits::DEFAULT, security);

    let (user, password) = (String::from_utf8_lossy(&web["username"]), String::from_utf8_lossy(&web["password"]));
    assert_eq!(user, "prometheus");
    assert!(password.len() >= 24, "a generated password");
    let server_name = "sctp-monitor.sctp-monitor.svc";
    let get = |auth: Option<String>| -> String {
        let mut c = Command::new(&curl);
        c.args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--cacert"])
            .arg(dir.path("ca.crt"))
            .args(["--resolve", &format!("{server_name}:{}:127.0.0.1", addr.port())]);
        if let Some(a) = auth {
            c.args(["-u", &a]);
        }
        let (_, out, err) = run(c.arg(format!("https://{server_name}:{}/metrics", addr.port())), None);
        assert!(err.is_empty(), "curl: {err}");
        out
    };
    assert_eq!(get(Some(format!("{user}:{password}"))), "200", "the monitors' credential and CA");
    assert_eq!(get(None), "401");
    assert_eq!(get(Some(format!("{user}:not-{password}"))), "401");
}

#[test]
fn rendered_manifests_pass_the_kubernetes_schemas() {
    let (Some(helm), Some(validate)) = (tool("helm"), tool("kubernetes-validate")) else { return };
    let dir = std::env::temp_dir().join(format!("sctpmon-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let check = |name: &str, yaml: &str| -> (bool, String) {
        let f = dir.join(name);
        std::fs::write(&f, yaml).expect("write");
        let (ok, out, err) = run(Command::new(&validate).args(["--strict", "--no-warn"]).arg(&f), None);
        (ok, format!("{out}{err}"))
    };
    for (name, sets) in [
        ("default.yaml", &[][..]),
        ("all.yaml", &["podMonitor.enabled=true", "serviceMonitor.enabled=true", "securityMode=root"][..]),
    ] {
        let (ok, out) = check(name, &render(&helm, sets));
        assert!(ok, "{name}: {out}");
        assert!(out.contains("passed for resource daemonset/sctp-monitor"), "{name}: {out}");
    }
    let (ok, out) = check(
        "kubernetes.yaml",
        &std::fs::read_to_string(repo().join("deploy/kubernetes/daemonset.yaml")).expect("manifest"),
    );
    assert!(ok, "deploy/kubernetes/daemonset.yaml: {out}");
    // The validator refuses what it should: a wrong type and an unknown field.
    let broken = render(&helm, &[]).replace("hostNetwork: true", "hostNetwork: \"yes\"\n      hostNetwrok: true");
    let (ok, out) = check("broken.yaml", &broken);
    assert!(!ok, "a broken DaemonSet passed: {out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_plain_manifest_is_the_charts_rendering() {
    let Some(helm) = tool("helm") else { return };
    let file = std::fs::read_to_string(repo().join("deploy/kubernetes/daemonset.yaml")).expect("manifest");
    let body = file.split_once("\n---\n").map(|(_, b)| format!("---\n{b}")).expect("a header comment, then ---");
    // As `cargo xtask manifests` renders it: the Secrets are the user's.
    let sets = ["webConfig.tls.secretName=sctp-monitor-tls", "webConfig.auth.existingSecret=sctp-monitor-web"];
    assert_eq!(
        body,
        render(&helm, &sets),
        "deploy/kubernetes/daemonset.yaml is out of date: regenerate it with `cargo xtask manifests`"
    );
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let Some(promtool) = tool("promtool") else { return };
    let dir = repo().join("deploy/prometheus");
    let (ok, out, err) =
        run(Command::new(&promtool).args(["check", "rules", "sctp-monitor.rules.yml"]).current_dir(&dir), None);
    assert!(ok, "promtool check rules: {out}{err}");
    let alerts: BTreeSet<String> = parse_yaml(
        &std::fs::read_to_string(dir.join("sctp-monitor.rules.yml")).expect("rules"),
    )[0]["groups"][0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect();
    for a in
        ["SctpFailoverStorm", "SctpPathDown", "SctpAssociationDown", "SctpMonitorRingRecordsLost", "SctpMalformedSurge"]
    {
        assert!(alerts.contains(a), "no {a} rule");
    }
    let (ok, out, err) =
        run(Command::new(&promtool).args(["test", "rules", "sctp-monitor.rules.test.yml"]).current_dir(&dir), None);
    assert!(ok, "promtool test rules: {out}{err}");
    // Every alert is exercised by the unit tests.
    let tests = std::fs::read_to_string(dir.join("sctp-monitor.rules.test.yml")).expect("tests");
    for a in &alerts {
        assert!(tests.contains(&format!("alertname: {a}\n")), "{a} has no unit test");
    }
}

/// A control-chunk record as the kernel writes it (IPv4).
fn record(chunk: &[u8], src: [u8; 4], dst: [u8; 4], ports: (u16, u16), vtag: u32, ts: u64) -> ChunkRecord {
    craft::record_v4(chunk, (src, dst), ports, vtag, 0, ts)
}

/// Metric families the agent exposes, by every name a query may use: the
/// agent's pipeline after a handshake and a heartbeat through it, its
/// kernel, attachment and tracker series set as the agent sets them, and
/// the build and process families.
fn exposed_names() -> BTreeSet<String> {
    let mut p = Pipeline::new(PipelineOptions::default(), EventWriter::new(None));
    let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let info = craft::param(1, &[7; 12]);
    p.on_record(&record(&craft::init(&InitSpec::new(0x1111, 1)), a, b, (5000, 6000), 0, 1_000));
    p.on_record(&record(&craft::init_ack(&InitSpec::new(0x2222, 1)), b, a, (6000, 5000), 0x1111, 2_000));
    p.on_record(&record(&craft::cookie_echo(&[0; 8]), a, b, (5000, 6000), 0x2222, 3_000));
    p.on_record(&record(&craft::cookie_ack(), b, a, (6000, 5000), 0x1111, 4_000));
    p.on_record(&record(&craft::heartbeat(&info), a, b, (5000, 6000), 0x2222, 5_000));
    p.on_record(&record(&craft::heartbeat_ack(&info), b, a, (6000, 5000), 0x1111, 7_000));
    assert_eq!(p.tracker.len(), 1, "the handshake made an association");
    let m = &p.metrics;
    m.set_tracker_stats(&p.tracker.stats());
    m.set_kernel(&[Counters::default(), Counters::default()], &[((1, 0, 1), 1)], |_| "eth0".into());
    m.set_attached(&[("eth0".into(), "sctp_ingress", "native".into())]);
    m.set_associations(&p.tracker, 10);
    m.decode_error("too_short");
    m.observe_report_delay(0.001);
    m.add_data(1, 1, 1, 1);
    let mut doc = m.encode(false);
    sctp_monitor::sinks::process::append(&mut doc, false);
    let mut names = BTreeSet::new();
    for line in doc.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let (name, ty) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
            names.insert(name.to_string());
            if ty == "histogram" {
                for s in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{s}"));
                }
            }
        }
    }
    names
}

/// Metric names in a PromQL expression (identifiers followed by `{` or a
/// range/space, starting with our prefixes).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in expr.match_indices(|c: char| c.is_ascii_alphabetic()) {
        if i > 0 && expr[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '"') {
            continue;
        }
        let name: String = expr[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if name.starts_with("sctp_monitor_") || name.starts_with("process_") {
            out.insert(name);
        }
    }
    out
}

#[test]
fn dashboard_uses_a_datasource_variable_rate_interval_and_existing_metrics() {
    let d: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/grafana/sctp-monitor.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let vars = d["templating"]["list"].as_array().expect("templating");
    let ds = vars.iter().find(|v| v["type"] == "datasource").expect("a datasource variable");
    assert_eq!(ds["query"], "prometheus");
    let var = format!("${{{}}}", ds["name"].as_str().expect("name"));
    let exposed = exposed_names();
    let mut exprs = Vec::new();
    for panel in d["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().unwrap_or("?");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], var.as_str(), "panel {title:?} datasource");
        for t in panel["targets"].as_array().into_iter().flatten() {
            assert_eq!(t["datasource"]["uid"], var.as_str(), "panel {title:?} target datasource");
            let e = t["expr"].as_str().expect("expr").to_string();
            exprs.push((title.to_string(), e));
        }
    }
    for v in vars.iter().filter(|v| v["type"] == "query") {
        assert_eq!(v["datasource"]["uid"], var.as_str(), "variable {} datasource", v["name"]);
        exprs.push((format!("variable {}", v["name"]), v["query"]["query"].as_str().unwrap_or("").to_string()));
    }
    assert!(exprs.len() > 20, "{} queries", exprs.len());
    for (title, e) in &exprs {
        for (i, _) in e.match_indices('[') {
            let window: String = e[i..].chars().take_while(|c| *c != ']').collect();
            assert!(
                window == "[$__rate_interval" || window == "[$__range",
                "panel {title:?}: window {window}] in {e}: use $__rate_interval"
            );
        }
        for m in metric_names(e) {
            assert!(exposed.contains(&m), "panel {title:?} queries {m}, which the agent does not expose");
        }
    }
    let rules = std::fs::read_to_string(repo().join("deploy/prometheus/sctp-monitor.rules.yml")).expect("rules");
    for line in rules.lines().filter(|l| l.contains("sctp_monitor_") && !l.trim_start().starts_with('#')) {
        for m in metric_names(line) {
            assert!(exposed.contains(&m), "the alert rules use {m}, which the agent does not expose");
        }
    }
}

#[test]
fn dockerfile_passes_hadolint() {
    let Some(hadolint) = tool("hadolint") else { return };
    let (ok, out, err) = run(Command::new(hadolint).arg(repo().join("deploy/Dockerfile")), None);
    assert!(ok, "hadolint deploy/Dockerfile: {out}{err}");
}
