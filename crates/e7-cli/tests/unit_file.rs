//! The restore unit orders itself before the network and restores the saved file.

fn unit() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dist/e7-restore.service"
    ))
    .unwrap()
}

fn values(key: &str) -> Vec<String> {
    unit()
        .lines()
        .filter_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .flat_map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

#[test]
fn restore_unit_runs_before_the_network() {
    assert_eq!(values("DefaultDependencies"), vec!["no"]);
    assert!(values("Before").contains(&"network-pre.target".to_string()));
    assert!(values("Wants").contains(&"network-pre.target".to_string()));
    assert!(values("After").contains(&"systemd-modules-load.service".to_string()));
    assert_eq!(values("ConditionPathExists"), vec!["/etc/e7/rules.e7"]);
    assert_eq!(values("Type"), vec!["oneshot"]);
    let exec = values("ExecStart");
    assert_eq!(exec[1], "run");
    assert_eq!(exec.last().map(String::as_str), Some("/etc/e7/rules.e7"));
    assert!(exec[0].ends_with("/e7"));
}
