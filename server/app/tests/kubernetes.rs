//! The Kubernetes manifests in deploy/kubernetes/ validate against the Kubernetes schemas and
//! agree with this build of the server (flags it accepts, its gRPC port, a bundled model's
//! health name, a metric it exports): `scripts/check-kubernetes.py`, run with the validator
//! that `scripts/install-kubernetes-validate.sh` installs (scripts/test.sh does). Skips with
//! the reason when the validator is absent.

use std::path::Path;
use std::process::Command;

#[test]
fn manifests_validate_and_match_the_server() {
    let (Some(python), Some(validator)) =
        (std::env::var_os("PROSODIA_K8S_PYTHON"), std::env::var_os("PROSODIA_K8S_VALIDATOR"))
    else {
        println!(
            "skipped: PROSODIA_K8S_PYTHON / PROSODIA_K8S_VALIDATOR are not set \
             (eval \"$(scripts/install-kubernetes-validate.sh)\" sets them)"
        );
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(python)
        .arg(root.join("scripts/check-kubernetes.py"))
        .arg(validator)
        .arg(env!("CARGO_BIN_EXE_prosodia-server"))
        .output()
        .expect("running scripts/check-kubernetes.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{text}");
    assert!(output.status.success(), "check-kubernetes failed:\n{text}");
    assert!(text.contains("deployment.yaml passed"), "the Deployment was not validated:\n{text}");
}
