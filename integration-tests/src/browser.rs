//! A minimal W3C WebDriver client, so the console's browser tests can drive Debian's
//! `chromium` through `chromedriver` without pulling a WebDriver crate (and its HTTP stack)
//! into the workspace: the few commands the tests need are plain JSON over HTTP/1.1 to a
//! loopback port, spoken here with the `hyper` the workspace already builds.
//!
//! [`Browser::start`] returns `Ok(None)` (and says why on stderr) when chromium or
//! chromedriver is not installed, so the tests skip on machines without a browser; setting
//! `XGATE_BROWSER_TESTS=required` turns that into an error, for CI where a skipped browser
//! test would hide a broken installation.
//!
//! Every method returns an error quoting WebDriver's own `error` and `message` (for example
//! `no such element: Unable to locate element: {"method":"css selector",...}`).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::process::log_tail;

/// The environment variable that makes a missing browser an error instead of a skip.
pub const REQUIRED_ENV: &str = "XGATE_BROWSER_TESTS";
/// The environment variable naming the chromium binary, when not `/usr/bin/chromium`.
pub const CHROMIUM_ENV: &str = "XGATE_CHROMIUM";
/// How to install what is missing.
const INSTALL_HINT: &str = "apt-get install chromium chromium-driver";
/// How long chromedriver may take to print its port and report ready. Generous: a loaded
/// 2-core machine may be compiling next door.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(20);
/// The client-side bound of one command, above the page-load and script timeouts given to
/// the browser (so those report WebDriver's own `timeout` error first) and above
/// chromium's start on session creation.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Page-load and script timeouts of the session (WebDriver's defaults are 300 s and 30 s).
const PAGE_LOAD_TIMEOUT_MS: u64 = 30_000;
const SCRIPT_TIMEOUT_MS: u64 = 30_000;
/// Pause between two probes of [`Browser::wait_for`].
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The key under which WebDriver returns (and accepts) an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// The line chromedriver prints on stdout once it listens; with `--port=0` it is the only
/// place the port chosen by the OS is told.
const STARTED_PREFIX: &str = "ChromeDriver was started successfully on port ";

/// A headless chromium session driven through a chromedriver child process.
///
/// Dropping it deletes the session (which makes chromedriver close chromium), kills
/// chromedriver and removes the temporary profile. [`Browser::quit`] does the same and
/// reports errors.
pub struct Browser {
    /// `None` once the session is deleted.
    session: Option<String>,
    port: u16,
    driver: Child,
    /// The chromium profile (`profile/`) and chromedriver's stderr (`chromedriver.log`).
    /// Declared after `driver`, so it is removed after chromedriver is killed.
    dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless chromium session.
    ///
    /// `Ok(None)` when chromium or chromedriver is missing (a line on stderr says which),
    /// unless `XGATE_BROWSER_TESTS=required`, which makes that an error. Once both are
    /// found, any failure to start them is an error: a broken installation must not pass
    /// as a skip.
    pub async fn start() -> anyhow::Result<Option<Browser>> {
        let (driver_bin, chromium) = match (find_chromedriver(), find_chromium()) {
            (Ok(driver), Ok(chromium)) => (driver, chromium),
            (driver, chromium) => {
                let missing: Vec<String> = [driver.err(), chromium.err()]
                    .into_iter()
                    .flatten()
                    .collect();
                let why = missing.join("; ");
                if std::env::var(REQUIRED_ENV).is_ok_and(|v| v == "required") {
                    bail!("{why} ({REQUIRED_ENV}=required); install them with `{INSTALL_HINT}`");
                }
                eprintln!(
                    "browser test skipped: {why}; install with `{INSTALL_HINT}` \
                     (set {REQUIRED_ENV}=required to make this an error)"
                );
                return Ok(None);
            }
        };
        Browser::launch(&driver_bin, &chromium).await.map(Some)
    }

    async fn launch(driver_bin: &Path, chromium: &Path) -> anyhow::Result<Browser> {
        let dir = tempfile::Builder::new()
            .prefix("xgate-browser-")
            .tempdir()
            .context("creating the browser's temporary folder")?;
        let log_path = dir.path().join("chromedriver.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating `{}`", log_path.display()))?;
        // `--port=0` lets the OS choose a free port (no race with other tests) and
        // chromedriver prints it. It listens on loopback only unless `--allowed-ips` is
        // given, so no flag is needed to keep it local.
        let mut driver = Command::new(driver_bin)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting `{}`", driver_bin.display()))?;
        let stdout = driver
            .stdout
            .take()
            .context("chromedriver stdout not piped")?;
        let deadline = Instant::now() + DRIVER_START_TIMEOUT;
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let line = match tokio::time::timeout_at(deadline.into(), lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None)) => bail!(
                    "chromedriver exited before listening ({:?}); its log:\n{}",
                    driver.try_wait(),
                    log_tail(&log_path)
                ),
                Ok(Err(e)) => bail!("reading chromedriver's stdout: {e}"),
                Err(_) => bail!(
                    "chromedriver printed no port within {} s; its log:\n{}",
                    DRIVER_START_TIMEOUT.as_secs(),
                    log_tail(&log_path)
                ),
            };
            if let Some(rest) = line.strip_prefix(STARTED_PREFIX) {
                break rest
                    .trim_end_matches('.')
                    .parse::<u16>()
                    .with_context(|| format!("port in chromedriver's line `{line}`"))?;
            }
        };
        // Keep reading stdout, or chromedriver would block once the pipe is full.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let mut browser = Browser {
            session: None,
            port,
            driver,
            dir,
        };
        browser.wait_ready(deadline).await?;

        let profile = browser.dir.path().join("profile");
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                // The console is served with the gateway's own development CA.
                "acceptInsecureCerts": true,
                "timeouts": { "pageLoad": PAGE_LOAD_TIMEOUT_MS, "script": SCRIPT_TIMEOUT_MS },
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        "--headless=new",
                        // Tests run as root in containers, where the sandbox cannot start.
                        "--no-sandbox",
                        "--disable-gpu",
                        "--no-first-run",
                        // No update checks, sync or other traffic beyond the page under test.
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        // Containers often have a tiny /dev/shm.
                        "--disable-dev-shm-usage",
                        "--window-size=1280,900",
                        format!("--user-data-dir={}", profile.display()),
                    ],
                },
            }},
        });
        let created = browser
            .http(Method::POST, "/session", Some(capabilities))
            .await
            .with_context(|| {
                format!(
                    "creating a chromium session; chromedriver's log:\n{}",
                    log_tail(&browser.log_path())
                )
            })?;
        let session = created
            .get("sessionId")
            .and_then(Value::as_str)
            .with_context(|| format!("no sessionId in chromedriver's answer {created}"))?;
        browser.session = Some(session.to_owned());
        Ok(browser)
    }

    /// Polls `GET /status` until chromedriver says it is ready, at most until `deadline`.
    async fn wait_ready(&self, deadline: Instant) -> anyhow::Result<()> {
        loop {
            let last = match self.http(Method::GET, "/status", None).await {
                Ok(status) if status.get("ready") == Some(&Value::Bool(true)) => return Ok(()),
                Ok(status) => format!("not ready: {status}"),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "chromedriver not ready within {} s ({last}); its log:\n{}",
                    DRIVER_START_TIMEOUT.as_secs(),
                    log_tail(&self.log_path())
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("chromedriver.log")
    }

    /// Deletes the session (chromium exits) and stops chromedriver, reporting errors that
    /// dropping the `Browser` would ignore.
    pub async fn quit(mut self) -> anyhow::Result<()> {
        if let Some(session) = self.session.take() {
            self.http(Method::DELETE, &format!("/session/{session}"), None)
                .await?;
        }
        self.driver.kill().await.context("stopping chromedriver")
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.cmd(Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .with_context(|| format!("navigating to `{url}`"))?;
        Ok(())
    }

    /// The URL of the current page.
    pub async fn current_url(&self) -> anyhow::Result<String> {
        string(
            self.cmd(Method::GET, "/url", None).await?,
            "the current URL",
        )
    }

    /// The title of the current page.
    pub async fn title(&self) -> anyhow::Result<String> {
        string(self.cmd(Method::GET, "/title", None).await?, "the title")
    }

    /// The current page's HTML, as serialised from the DOM.
    pub async fn source(&self) -> anyhow::Result<String> {
        string(
            self.cmd(Method::GET, "/source", None).await?,
            "the page source",
        )
    }

    /// The visible (rendered) text of the first element matching the CSS selector `css`.
    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        let element = self.find(css).await?;
        self.element_text(&element).await
    }

    /// The visible texts of all elements matching `css`, in document order.
    pub async fn texts(&self, css: &str) -> anyhow::Result<Vec<String>> {
        let mut texts = Vec::new();
        for element in self.find_all(css).await? {
            texts.push(self.element_text(&element).await?);
        }
        Ok(texts)
    }

    /// Whether an element matches `css`.
    pub async fn exists(&self, css: &str) -> anyhow::Result<bool> {
        Ok(!self.find_all(css).await?.is_empty())
    }

    /// Waits until an element matches `css`, polling every 100 ms, at most for `timeout`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.exists(css).await? {
            if Instant::now() >= deadline {
                let url = self.current_url().await.unwrap_or_default();
                bail!(
                    "no element matches `{css}` within {} s (page `{url}`)",
                    timeout.as_secs_f64()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        Ok(())
    }

    /// Clears the first input or textarea matching `css`, then types `value` into it.
    pub async fn fill(&self, css: &str, value: &str) -> anyhow::Result<()> {
        let element = self.find(css).await?;
        self.cmd(Method::POST, &format!("/element/{element}/clear"), None)
            .await
            .with_context(|| format!("clearing `{css}`"))?;
        self.cmd(
            Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": value })),
        )
        .await
        .with_context(|| format!("typing into `{css}`"))?;
        Ok(())
    }

    /// Chooses the option whose `value` attribute is `value` in the `<select>` matching
    /// `css`, by clicking it as a user would (so `change` handlers run).
    pub async fn select(&self, css: &str, value: &str) -> anyhow::Result<()> {
        let select = self.find(css).await?;
        let option_css = format!("option[value=\"{}\"]", css_string(value));
        let found = self
            .cmd(
                Method::POST,
                &format!("/element/{select}/element"),
                Some(json!({ "using": "css selector", "value": option_css })),
            )
            .await
            .with_context(|| format!("finding option `{value}` in `{css}`"))?;
        let option = element_id(&found)?;
        self.cmd(Method::POST, &format!("/element/{option}/click"), None)
            .await
            .with_context(|| format!("choosing option `{value}` in `{css}`"))?;
        let selected = self
            .cmd(Method::GET, &format!("/element/{option}/selected"), None)
            .await?;
        if selected != Value::Bool(true) {
            bail!("option `{value}` of `{css}` is not selected after clicking it");
        }
        Ok(())
    }

    /// Clicks the first element matching `css` (scrolled into view; an error if another
    /// element would receive the click).
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let element = self.find(css).await?;
        self.cmd(Method::POST, &format!("/element/{element}/click"), None)
            .await
            .with_context(|| format!("clicking `{css}`"))?;
        Ok(())
    }

    /// Submits the form matching `css` as its submit button would: `requestSubmit()` runs
    /// the form's validation and `submit` handlers, which `form.submit()` would skip.
    pub async fn submit(&self, css: &str) -> anyhow::Result<()> {
        let form = self.find(css).await?;
        self.execute(
            "arguments[0].requestSubmit();",
            vec![json!({ ELEMENT_KEY: form })],
        )
        .await
        .with_context(|| format!("submitting `{css}`"))?;
        Ok(())
    }

    /// Runs `script` as the body of a function in the page, with `args` as `arguments`,
    /// and returns what it returns (W3C "Execute Script"; a returned promise is awaited).
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.cmd(
            Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// The cookies visible to the current page, as W3C cookie objects (`name`, `value`,
    /// `path`, `domain`, `secure`, `httpOnly`, `expiry`, `sameSite`).
    pub async fn cookies(&self) -> anyhow::Result<Vec<Value>> {
        match self.cmd(Method::GET, "/cookie", None).await? {
            Value::Array(cookies) => Ok(cookies),
            other => bail!("cookies are not a list: {other}"),
        }
    }

    /// Sets a cookie for the current page's domain, with path `/` and `secure`.
    pub async fn add_cookie(&self, name: &str, value: &str) -> anyhow::Result<()> {
        let cookie = json!({ "name": name, "value": value, "path": "/", "secure": true });
        self.cmd(Method::POST, "/cookie", Some(json!({ "cookie": cookie })))
            .await
            .with_context(|| format!("adding cookie `{name}`"))?;
        Ok(())
    }

    /// Deletes the cookies visible to the current page.
    pub async fn delete_cookies(&self) -> anyhow::Result<()> {
        self.cmd(Method::DELETE, "/cookie", None).await?;
        Ok(())
    }

    /// Writes a PNG screenshot of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let encoded = string(
            self.cmd(Method::GET, "/screenshot", None).await?,
            "the screenshot",
        )?;
        let png = base64_decode(&encoded).context("decoding the screenshot")?;
        std::fs::write(path, png).with_context(|| format!("writing `{}`", path.display()))
    }

    /// The current page's `Server-Timing` response header, as `(name, duration in ms)`
    /// pairs, read from the Navigation Timing entry. Browsers expose it only in secure
    /// contexts (HTTPS, or plain HTTP on loopback).
    pub async fn server_timing(&self) -> anyhow::Result<Vec<(String, f64)>> {
        let value = self
            .execute(
                "return performance.getEntriesByType('navigation')[0]\
                 .serverTiming.map(t => [t.name, t.duration]);",
                Vec::new(),
            )
            .await?;
        let pairs = value
            .as_array()
            .with_context(|| format!("server timing is not a list: {value}"))?;
        pairs
            .iter()
            .map(
                |pair| match (pair.get(0).and_then(Value::as_str), pair.get(1)) {
                    (Some(name), Some(duration)) => Ok((
                        name.to_owned(),
                        duration
                            .as_f64()
                            .with_context(|| format!("duration of {pair}"))?,
                    )),
                    _ => bail!("server timing entry is not [name, duration]: {pair}"),
                },
            )
            .collect()
    }

    /// The reference of the first element matching `css`.
    async fn find(&self, css: &str) -> anyhow::Result<String> {
        let found = self
            .cmd(
                Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await
            .with_context(|| format!("finding `{css}`"))?;
        element_id(&found)
    }

    /// The references of all elements matching `css`.
    async fn find_all(&self, css: &str) -> anyhow::Result<Vec<String>> {
        let found = self
            .cmd(
                Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await
            .with_context(|| format!("finding `{css}`"))?;
        match found {
            Value::Array(elements) => elements.iter().map(element_id).collect(),
            other => bail!("elements are not a list: {other}"),
        }
    }

    async fn element_text(&self, element: &str) -> anyhow::Result<String> {
        let text = self
            .cmd(Method::GET, &format!("/element/{element}/text"), None)
            .await?;
        string(text, "an element's text")
    }

    /// A command of the session: `path` is relative to `/session/{id}`.
    async fn cmd(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let session = self.session.as_deref().context("the session is deleted")?;
        self.http(method, &format!("/session/{session}{path}"), body)
            .await
    }

    /// One WebDriver request on a fresh connection (chromedriver answers one command at a
    /// time anyway), returning the response's `value`, or an error quoting WebDriver's
    /// `error` and `message`. POST commands without parameters send `{}`, as W3C requires.
    async fn http(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let what = format!("WebDriver `{method} {path}`");
        tokio::time::timeout(COMMAND_TIMEOUT, self.http_unbounded(method, path, body))
            .await
            .map_err(|_| {
                anyhow::anyhow!("{what}: no answer within {} s", COMMAND_TIMEOUT.as_secs())
            })?
            .with_context(|| what.clone())
    }

    async fn http_unbounded(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to chromedriver at {addr}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // The connection task ends when `sender` is dropped after the response.
        tokio::spawn(connection);
        let body = match (body, &method) {
            (Some(body), _) => Bytes::from(serde_json::to_vec(&body)?),
            (None, &Method::POST) => Bytes::from_static(b"{}"),
            (None, _) => Bytes::new(),
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            // chromedriver rejects Host headers other than loopback (DNS rebinding).
            .header(header::HOST, addr.to_string())
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(Full::new(body))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let mut answer: Value = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "HTTP {status}, body not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        })?;
        let value = answer.get_mut("value").map(Value::take).unwrap_or_default();
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            let message = value.get("message").and_then(Value::as_str).unwrap_or("");
            bail!("{error}: {message}");
        }
        if !status.is_success() {
            bail!("HTTP {status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(value)
    }
}

impl Drop for Browser {
    /// Deletes the session best-effort, so chromedriver closes chromium (killing
    /// chromedriver alone can leave chromium running, holding the profile folder).
    /// Blocking: `Drop` cannot await, and chromedriver answers once chromium has exited,
    /// typically well under a second.
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            delete_session_blocking(self.port, &session);
        }
        // `kill_on_drop` kills it too; killing first lets it go before the profile does.
        let _ = self.driver.start_kill();
    }
}

/// `DELETE /session/{id}` on a blocking socket, errors ignored.
fn delete_session_blocking(port: u16, session: &str) {
    use std::io::{Read as _, Write as _};
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        // The answer comes once chromium has exited; its first bytes are enough.
        let _ = stream.read(&mut [0; 512]);
    }
}

/// `chromedriver` on `PATH`, else `/usr/bin/chromedriver`.
fn find_chromedriver() -> Result<PathBuf, String> {
    on_path("chromedriver")
        .or_else(|| executable(Path::new("/usr/bin/chromedriver")))
        .ok_or_else(|| "chromedriver not found on PATH nor at /usr/bin/chromedriver".to_owned())
}

/// `$XGATE_CHROMIUM` if set, else `/usr/bin/chromium`, else `chromium` on `PATH`.
fn find_chromium() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(CHROMIUM_ENV) {
        let path = PathBuf::from(path);
        return executable(&path)
            .ok_or_else(|| format!("{CHROMIUM_ENV}=`{}` is not an executable", path.display()));
    }
    executable(Path::new("/usr/bin/chromium"))
        .or_else(|| on_path("chromium"))
        .ok_or_else(|| "chromium not found at /usr/bin/chromium nor on PATH".to_owned())
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| executable(&dir.join(name)))
}

fn executable(path: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = std::fs::metadata(path).ok()?;
    (metadata.is_file() && metadata.permissions().mode() & 0o111 != 0).then(|| path.to_owned())
}

/// The reference in a W3C element object `{"element-6066-…": id}`.
fn element_id(element: &Value) -> anyhow::Result<String> {
    element
        .get(ELEMENT_KEY)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("not an element reference: {element}"))
}

fn string(value: Value, what: &str) -> anyhow::Result<String> {
    match value {
        Value::String(s) => Ok(s),
        other => bail!("{what} is not a string: {other}"),
    }
}

/// `value` escaped for a double-quoted CSS string.
fn css_string(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                escaped.push('\\');
                escaped.push(c);
            }
            // A newline cannot appear literally in a CSS string; `\a ` is its escape.
            '\n' => escaped.push_str("\\a "),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// Standard base64 (RFC 4648, with or without padding), as WebDriver sends screenshots:
/// small enough here not to add a crate for it.
fn base64_decode(text: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let sextet = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\r' | b'\n' => continue,
            _ => bail!("byte {c:#04x} is not base64"),
        };
        acc = (acc << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    #[test]
    fn base64_decodes_rfc4648_vectors() {
        for (encoded, decoded) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            assert_eq!(base64_decode(encoded).unwrap(), decoded.as_bytes());
        }
        assert!(base64_decode("Zm9v!").is_err());
        assert_eq!(base64_decode("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
    }

    #[test]
    fn css_strings_are_escaped() {
        assert_eq!(css_string(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(css_string("x\ny"), "x\\a y");
    }

    const FORM_PAGE: &str = r#"<!doctype html>
<html><head><title>Form</title></head><body>
<form id="f" action="/hello" method="get">
  <input id="name" name="name" value="placeholder">
  <select id="colour" name="colour">
    <option value="red">Red</option>
    <option value="sea &quot;blue&quot;">Blue</option>
  </select>
  <button id="preview" type="button"
    onclick="document.getElementById('out').textContent = 'preview ' + document.getElementById('name').value">Preview</button>
  <button id="go" type="submit">Go</button>
</form>
<p id="out"></p>
</body></html>"#;

    /// A one-request-per-connection HTTP/1.1 server: `/` is the form (with a cookie and a
    /// `Server-Timing` header), `/hello?…` echoes the query.
    async fn serve(listener: TcpListener) {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request);
                let target = request.split(' ').nth(1).unwrap_or("/").to_owned();
                let (extra, body) = if let Some(query) = target.strip_prefix("/hello?") {
                    let items: String = query
                        .split('&')
                        .map(|pair| format!("<li class=\"field\">{}</li>", url_decode(pair)))
                        .collect();
                    (
                        "",
                        format!(
                            "<!doctype html><title>Hello</title><h1 id=\"greeting\">Hello</h1>\
                             <ul>{items}</ul>"
                        ),
                    )
                } else if target == "/" {
                    (
                        "Set-Cookie: visit=1; Path=/\r\nServer-Timing: db;dur=12.5, app;dur=3\r\n",
                        FORM_PAGE.to_owned(),
                    )
                } else {
                    ("", "<!doctype html><title>Not found</title>".to_owned())
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    }

    /// Enough of `application/x-www-form-urlencoded` decoding for the test's values.
    fn url_decode(s: &str) -> String {
        let mut out = Vec::new();
        let mut bytes = s.bytes();
        while let Some(b) = bytes.next() {
            match b {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex: String = bytes.by_ref().take(2).map(char::from).collect();
                    out.push(u8::from_str_radix(&hex, 16).unwrap());
                }
                _ => out.push(b),
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn drives_a_form_in_headless_chromium() {
        let started = Instant::now();
        let Some(browser) = Browser::start().await.unwrap() else {
            return;
        };
        eprintln!("browser started in {:?}", started.elapsed());
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(serve(listener));

        browser.goto(&format!("{base}/")).await.unwrap();
        assert_eq!(browser.title().await.unwrap(), "Form");
        assert!(browser.exists("#f").await.unwrap());
        assert!(!browser.exists("#greeting").await.unwrap());
        assert_eq!(
            browser.server_timing().await.unwrap(),
            [("db".to_owned(), 12.5), ("app".to_owned(), 3.0)]
        );
        let cookies = browser.cookies().await.unwrap();
        assert!(
            cookies
                .iter()
                .any(|c| c["name"] == "visit" && c["value"] == "1"),
            "{cookies:?}"
        );

        browser.fill("#name", "Ada Lovelace").await.unwrap();
        browser.click("#preview").await.unwrap();
        assert_eq!(browser.text("#out").await.unwrap(), "preview Ada Lovelace");
        browser.select("#colour", "sea \"blue\"").await.unwrap();
        let err = browser.select("#colour", "green").await.unwrap_err();
        assert!(format!("{err:#}").contains("no such element"), "{err:#}");

        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("form.png");
        browser.screenshot(&png).await.unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");

        browser.click("#go").await.unwrap();
        browser
            .wait_for("#greeting", Duration::from_secs(10))
            .await
            .unwrap();
        assert!(
            browser
                .current_url()
                .await
                .unwrap()
                .starts_with(&format!("{base}/hello?name=Ada+Lovelace")),
        );
        assert_eq!(
            browser.texts("li.field").await.unwrap(),
            ["name=Ada Lovelace", "colour=sea \"blue\""]
        );
        assert!(
            browser
                .source()
                .await
                .unwrap()
                .contains("<h1 id=\"greeting\">")
        );

        browser.goto(&format!("{base}/")).await.unwrap();
        browser.submit("#f").await.unwrap();
        browser
            .wait_for("#greeting", Duration::from_secs(10))
            .await
            .unwrap();
        let answer = browser
            .execute(
                "return arguments[0] + arguments[1];",
                vec![json!(2), json!(3)],
            )
            .await
            .unwrap();
        assert_eq!(answer, json!(5));

        browser.add_cookie("token", "abc").await.unwrap();
        let names: Vec<Value> = browser
            .cookies()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c["name"].clone())
            .collect();
        assert!(names.contains(&json!("token")), "{names:?}");
        browser.delete_cookies().await.unwrap();
        assert_eq!(browser.cookies().await.unwrap(), Vec::<Value>::new());

        let err = browser.text("#missing").await.unwrap_err();
        assert!(format!("{err:#}").contains("no such element"), "{err:#}");

        // Dropping (what a failing test does) deletes the session and the profile.
        let dir = browser.dir.path().to_owned();
        drop(browser);
        assert!(!dir.exists(), "`{}` left behind", dir.display());
    }
}
