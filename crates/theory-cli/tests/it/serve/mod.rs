//! `theory serve` as an application calls it, one area per file; `Server` starts one in a
//! project of its own and speaks plain HTTP/1.1 to it.

mod artifacts;
mod dashboard;
mod events;
mod front_ends;
mod hostile;
mod remote;
mod runs;
mod tenancy;
mod warm;
mod webhooks;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Project, binaries, binary};

/// Makes an API token with `theory token create` and returns its secret.
pub(crate) fn token(project: &Project, args: &[&str]) -> String {
    let mut all = vec!["token", "create", "--json"];
    all.extend_from_slice(args);
    let made = project.run(&all);
    assert_eq!(made.code, 0, "{}", made.transcript());
    made.json()["secret"].as_str().expect("a secret").to_owned()
}

/// A running `theory serve` in a project of its own.
pub(crate) struct Server {
    child: Child,
    /// `host:port`.
    pub(crate) address: String,
}

impl Server {
    /// Starts `theory serve --no-auth` with `extra` arguments.
    pub(crate) fn start(project: &Project, extra: &[&str]) -> Server {
        let mut args = vec!["--no-auth"];
        args.extend_from_slice(extra);
        Server::launch(project, &args)
    }

    /// Starts `theory serve` with exactly `extra` (and a free port).
    pub(crate) fn launch(project: &Project, extra: &[&str]) -> Server {
        Server::launch_with(project, extra, &[])
    }

    /// Starts `theory serve` with exactly `extra`, and `env` set.
    pub(crate) fn launch_with(project: &Project, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(binary())
            .current_dir(project.path())
            .env_clear()
            .env("THEORY_PROJECT", project.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("THEORY_PROCESSOR_PATH", binaries())
            .env("THEORY_LOCAL_RUNTIME", "process")
            .env("THEORY_LOG", "warn")
            .envs(project.env_pairs())
            .envs(env.iter().copied())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("theory serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).unwrap();
        let listening: Value = serde_json::from_str(&line).unwrap_or_else(|error| {
            panic!("theory serve printed {line:?} instead of its address: {error}")
        });
        let address = listening["listening"].as_str().expect("an address").to_owned();
        Server { child, address }
    }

    /// One HTTP/1.1 request; returns the status and the JSON body.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Value) {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        let answer = self.exchange(method, path, &all, body.as_bytes());
        (answer.status, serde_json::from_slice(&answer.body).unwrap_or(Value::Null))
    }

    /// One HTTP/1.1 request of any body; returns the whole answer.
    pub(crate) fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let mut stream = TcpStream::connect(&self.address).expect("connects");
        stream.set_read_timeout(Some(Duration::from_secs(90))).unwrap();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        for (name, value) in headers {
            request += name;
            request += ": ";
            request += value;
            request += "\r\n";
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let split =
            response.windows(4).position(|window| window == b"\r\n\r\n").unwrap_or(response.len());
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        let rest = response.get(split + 4..).unwrap_or_default();
        let status = head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            unchunk(rest)
        } else {
            rest.to_vec()
        };
        Answer { status, head, body }
    }

    pub(crate) fn submit(&self, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
        self.request("POST", "/v1/runs", headers, &body.to_string())
    }

    pub(crate) fn get(&self, id: &str) -> Value {
        let (status, object) = self.request("GET", &format!("/v1/runs/{id}"), &[], "");
        assert_eq!(status, 200, "{object}");
        object
    }

    /// Waits until the run has `status`.
    pub(crate) fn wait_status(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let object = self.get(id);
            if object["status"] == status {
                return object;
            }
            assert!(Instant::now() < deadline, "run {id} never reached {status}: {object}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, and the exit status.
    pub(crate) fn stop(mut self) -> Option<i32> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = self.child.wait().unwrap().code();
        std::mem::forget(self);
        status
    }
}

/// An HTTP answer.
pub(crate) struct Answer {
    /// Its status code.
    pub(crate) status: u16,
    /// The status line and headers.
    pub(crate) head: String,
    /// The body, de-chunked.
    pub(crate) body: Vec<u8>,
}

impl Answer {
    /// A header's value (names are case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (field, value) = line.split_once(':')?;
            field.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Decodes a chunked body.
fn unchunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let Some(end) = rest.windows(2).position(|window| window == b"\r\n") else { return body };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&rest[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[end + 2..end + 2 + size]);
        rest = &rest[end + 2 + size + 2..];
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
