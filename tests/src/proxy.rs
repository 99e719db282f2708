//! nginx as the TLS reverse proxy in front of test servers, configured with the very file the
//! deployment guide ships (`docs/deploy/nginx-vypusk.conf`), so the guide cannot rot.
//!
//! Every party gets its own loopback address: nginx listens on 127.0.0.1 and connects
//! upstream from `upstream_from` (`proxy_bind`), so a test can trust exactly that address.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx. Stopped on drop.
pub struct Nginx {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub ca_pem: Vec<u8>,
    child: Option<Child>,
}

fn nginx_bin() -> PathBuf {
    for candidate in ["/usr/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("nginx is missing: run the tests with scripts/test-all.sh, which installs it");
}

/// A port nobody listens on right now (for nginx, chosen before the servers behind it start,
/// so their `public_url` can name it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The guide's site configuration with this test's certificate, port and upstreams.
pub fn site_config(
    guide: &str,
    cert: &Path,
    key: &Path,
    port: u16,
    upstreams: &[String],
    upstream_from: &str,
) -> String {
    let mut out = String::new();
    let mut in_upstream = false;
    for line in guide.lines() {
        let t = line.trim_start();
        if t.starts_with("upstream vypusk") {
            in_upstream = true;
        }
        if in_upstream && t.starts_with("server ") {
            continue; // replaced below by this test's instances
        }
        if in_upstream && t.starts_with("keepalive") {
            for u in upstreams {
                out.push_str(&format!("    server {u} max_fails=3 fail_timeout=10s;\n"));
            }
            in_upstream = false;
        }
        let replaced = if t.starts_with("listen 443 ssl;") {
            format!("    listen 127.0.0.1:{port} ssl;")
        } else if t.starts_with("ssl_certificate ") {
            format!("    ssl_certificate     {};", cert.display())
        } else if t.starts_with("ssl_certificate_key ") {
            format!("    ssl_certificate_key {};", key.display())
        } else if t.starts_with("proxy_pass ") {
            format!("{line}\n        proxy_bind {upstream_from};")
        } else {
            line.to_owned()
        };
        out.push_str(&replaced);
        out.push('\n');
    }
    out
}

/// A throwaway CA and a server certificate for localhost/127.0.0.1 signed by it (rustls
/// refuses a self-signed certificate used as its own CA).
fn make_certificates(dir: &Path, ca: &Path, cert: &Path, key: &Path) {
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success(), "openssl {args:?} failed");
    };
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .expect("leaf.ext");
    let (ca, cert, key) = (
        ca.to_str().expect("utf-8 path"),
        cert.to_str().expect("utf-8 path"),
        key.to_str().expect("utf-8 path"),
    );
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=vypusk test CA",
        "-keyout",
        "ca.key",
        "-out",
        ca,
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        key,
        "-out",
        "leaf.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        ca,
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
        "-out",
        cert,
    ]);
}

impl Nginx {
    /// The `public_url` of servers behind an nginx on `port`.
    pub fn public_url(port: u16) -> String {
        format!("https://localhost:{port}")
    }

    /// Starts nginx on `port` of 127.0.0.1 in front of `upstreams` (`host:port`), connecting
    /// to them from `upstream_from`.
    pub fn start(port: u16, upstreams: &[String], upstream_from: &str) -> Nginx {
        let dir = tempfile::tempdir().expect("temp dir");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let ca = dir.path().join("ca.pem");
        make_certificates(dir.path(), &ca, &cert, &key);
        let guide =
            std::fs::read_to_string(crate::workspace_root().join("docs/deploy/nginx-vypusk.conf"))
                .expect("docs/deploy/nginx-vypusk.conf");
        let site = site_config(&guide, &cert, &key, port, upstreams, upstream_from);
        std::fs::write(dir.path().join("site.conf"), site).expect("site.conf");
        let d = dir.path().display();
        let main = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
             scgi_temp_path {d}/scgi;\n  include {d}/site.conf;\n}}\n"
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, main).expect("nginx.conf");
        let child = Command::new(nginx_bin())
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            base: Nginx::public_url(port),
            ca_pem: std::fs::read(&ca).expect("ca"),
            dir,
            child: Some(child),
        }
    }

    /// A client that trusts this nginx's certificate and connects from `from`.
    pub fn client_from(&self, from: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&self.ca_pem).expect("certificate"),
            )
            .local_address(from.parse::<std::net::IpAddr>().expect("address"))
            .resolve(
                "localhost",
                self.base
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                    .map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], p)))
                    .expect("port"),
            )
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .expect("client")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for Nginx {
    /// SIGTERM, so the master stops its workers (SIGKILL would leave them orphaned, still
    /// holding the port); SIGKILL only if it has not exited after a few seconds.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
