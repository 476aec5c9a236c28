//! The Curator peer: `tests/interop/java/Peer.java`, compiled once per test
//! process with `javac` against the Debian packages' jars.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::fixture::which;

/// The program's source, in this crate.
const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/java/Peer.java");

/// The jars it needs and the Debian package of each. curator-recipes'
/// manifest names the rest (framework, client, zookeeper, jute, guava,
/// slf4j-api); slf4j-nop keeps the client's logging quiet.
const JARS: &[(&str, &str)] = &[
    (
        "/usr/share/java/curator-recipes.jar",
        "libcurator-recipes-java",
    ),
    (
        "/usr/share/java/curator-framework.jar",
        "libcurator-framework-java",
    ),
    (
        "/usr/share/java/curator-client.jar",
        "libcurator-client-java",
    ),
    ("/usr/share/java/zookeeper.jar", "libzookeeper-java"),
    ("/usr/share/java/zookeeper-jute.jar", "libzookeeper-java"),
    ("/usr/share/java/guava.jar", "libguava-java"),
    ("/usr/share/java/slf4j-api.jar", "libslf4j-java"),
    ("/usr/share/java/slf4j-nop.jar", "libslf4j-java"),
];

/// Where the compiled classes are (a temp dir kept for the process).
static CLASSES: OnceLock<Result<tempfile::TempDir, String>> = OnceLock::new();

fn classpath() -> String {
    JARS.iter().map(|(j, _)| *j).collect::<Vec<_>>().join(":")
}

fn compile() -> Result<tempfile::TempDir, String> {
    which("javac", "default-jdk-headless")?;
    which("java", "default-jre-headless")?;
    for (jar, package) in JARS {
        if !Path::new(jar).is_file() {
            return Err(format!(
                "{jar} not found: install the Debian package {package} (scripts/test installs it when run as root)"
            ));
        }
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = Command::new("javac")
        .args(["-nowarn", "-d"])
        .arg(dir.path())
        .args(["-cp", &classpath()])
        .arg(SOURCE)
        .output()
        .map_err(|e| format!("javac: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "javac {SOURCE} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(dir)
}

/// `java` with the compiled peer on its class path, ready for the peer's
/// arguments.
pub(crate) fn command() -> Result<tokio::process::Command, String> {
    let classes: PathBuf = CLASSES
        .get_or_init(compile)
        .as_ref()
        .map_err(Clone::clone)?
        .path()
        .to_path_buf();
    let mut c = tokio::process::Command::new("java");
    c.args([
        "-Xms16m",
        "-Xmx64m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
    ])
    .arg("-cp")
    .arg(format!("{}:{}", classes.display(), classpath()))
    .arg("Peer");
    Ok(c)
}
