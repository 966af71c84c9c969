//! The `stage:platform/backend` world: an app's API backend, a `wasi:http/proxy` component
//! that serves one request per fresh instance, with the platform's host interfaces
//! (`inference`, `compute`, `utils`, `log`).
//!
//! The request body streams into the guest as it arrives (the embedder bounds it); the
//! response body is collected here up to the output limit. The guest's outbound
//! requests (wasi:http and `utils.fetch`) pass the same capability policy and limits as a
//! step's. `inference` reaches the embedded inference service (which holds the key and
//! records usage) and `compute` is served by the embedder's [`ComputeHost`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime::{Engine, Store};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::types::HostResponseOutparam;
use wasmtime_wasi_http::{Error as HttpError, WasiHttpView};

use super::capture::LogLine;
use super::limits::{DeadlinePassed, Limits};
use super::outbound::{BoxFuture, Gateway, Identity, OutboundHooks, OutboundReport, Refusal};
use super::policy::Policy;
use super::retry::{Jitter, RetryPolicy};
use super::sandbox::{Grant, Recorders, Sandbox};
use super::step::bindings::stage::platform::types;
use super::step::{ErrorClass, StepFailure};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../guest-sdk/wit",
        world: "stage:platform/backend",
        imports: {
            "stage:platform/inference": async,
            "stage:platform/compute": async,
            "stage:platform/utils.fetch": async,
        },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:random": wasmtime_wasi::p2::bindings::random,
            "wasi:cli": wasmtime_wasi::p2::bindings::cli,
            "stage:platform/log": crate::step::bindings::stage::platform::log,
            "stage:platform/types": crate::step::bindings::stage::platform::types,
        },
        require_store_data_send: true,
    });
}

use bindings::stage::platform::{compute, inference, utils};

/// Workflows and steps a backend may run through its `compute` interface, supplied by the
/// embedder for each request (it knows the app version and the caller).
pub trait ComputeHost: Send + Sync + 'static {
    /// Runs workflow `name` of the app's version; the answer is `{runId, status, headers, body}`.
    fn run_workflow(&self, name: String, input: String) -> BoxFuture<'static, Result<String, StepFailure>>;

    /// Runs one built-in step once; the answer is its JSON output.
    fn run_step(&self, kind: String, input: String) -> BoxFuture<'static, Result<String, StepFailure>>;
}

/// A request body streamed into the guest as it arrives; an error ends the guest's read.
pub type RequestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, HttpError>;

/// One request for a backend.
pub struct BackendCall {
    /// The request as the guest sees it: absolute URI (prefix already stripped), headers
    /// already filtered by the embedder, the body (bounded by the embedder).
    pub request: http::Request<RequestBody>,
    pub identity: Identity,
    pub policy: Arc<Policy>,
    pub limits: Limits,
    pub compute: Arc<dyn ComputeHost>,
}

/// Why a backend produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendFailure {
    /// The wall-time limit passed.
    Timeout(Duration),
    /// The guest tried to grow its memory past the limit.
    MemoryExceeded { limit: usize },
    /// The response body was larger than allowed.
    ResponseTooLarge { limit: usize },
    /// The guest trapped (panicked, hit `unreachable`, …).
    Trap(String),
    /// The component could not be instantiated.
    Instantiate(String),
    /// The guest returned without a response, or answered with a wasi:http error code.
    NoResponse(String),
}

impl std::fmt::Display for BackendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendFailure::Timeout(limit) => write!(f, "the backend ran longer than {} ms", limit.as_millis()),
            BackendFailure::MemoryExceeded { limit } => {
                write!(f, "the backend exceeded its memory limit of {} MiB", limit / (1024 * 1024))
            }
            BackendFailure::ResponseTooLarge { limit } => {
                write!(f, "the backend's response body exceeds {limit} bytes")
            }
            BackendFailure::Trap(why) => write!(f, "the backend crashed: {why}"),
            BackendFailure::Instantiate(why) => write!(f, "the backend could not start: {why}"),
            BackendFailure::NoResponse(why) => write!(f, "the backend gave no response: {why}"),
        }
    }
}

/// Everything one backend request produced.
#[derive(Debug)]
pub struct BackendAnswer {
    pub outcome: Result<http::Response<Bytes>, BackendFailure>,
    pub duration: Duration,
    pub outbound: OutboundReport,
    pub stdout: String,
    pub stderr: String,
    pub log: Vec<LogLine>,
}

impl BackendAnswer {
    /// A request that ended before its guest ran.
    pub(crate) fn failed(failure: BackendFailure) -> BackendAnswer {
        BackendAnswer {
            outcome: Err(failure),
            duration: Duration::ZERO,
            outbound: OutboundReport::default(),
            stdout: String::new(),
            stderr: String::new(),
            log: Vec::new(),
        }
    }
}

impl inference::Host for Sandbox {
    async fn chat(&mut self, request: String) -> Result<String, types::StepError> {
        self.inference("/v1/chat/completions", request).await
    }

    async fn embed(&mut self, request: String) -> Result<String, types::StepError> {
        self.inference("/v1/embeddings", request).await
    }
}

impl compute::Host for Sandbox {
    async fn run_workflow(&mut self, name: String, input: String) -> Result<String, types::StepError> {
        self.compute_host()?.run_workflow(name, input).await.map_err(|failure| step_error(&failure))
    }

    async fn run_step(&mut self, kind: String, input: String) -> Result<String, types::StepError> {
        self.compute_host()?.run_step(kind, input).await.map_err(|failure| step_error(&failure))
    }
}

impl utils::Host for Sandbox {
    async fn fetch(&mut self, request: utils::FetchRequest) -> Result<utils::FetchResponse, types::StepError> {
        let retry = request.retry.map(|r| RetryPolicy {
            max_attempts: r.max_attempts.min(super::retry::MAX_ATTEMPTS),
            interval_ms: r.interval_ms,
            backoff_rate: r.backoff_rate,
            max_delay_ms: r.max_delay_ms,
            jitter: if r.full_jitter { Jitter::Full } else { Jitter::None },
        });
        let call = self.hooks.call();
        let mut attempt = 1;
        loop {
            let outgoing = outgoing_request(&request)?;
            let result = call.send(outgoing, None).await;
            let retryable = match &result {
                Ok(response) => retryable_status(response.status()).then(|| retry_after(response)),
                // Refused by the host: final, unless the credential source is down for now.
                Err(HttpError::HttpRequestDenied) => match refusal_error(&self.hooks) {
                    types::StepError::Transient(_) => Some(None),
                    refused => return Err(refused),
                },
                Err(_) => Some(None),
            };
            if let (Some(asked), Some(policy)) = (retryable, &retry)
                && policy.allows_retry(attempt)
            {
                let computed = policy.delay_before_retry(attempt, &mut rand::rng());
                tokio::time::sleep(asked.map_or(computed, |asked| asked.max(computed))).await;
                attempt += 1;
                continue;
            }
            return match result {
                Ok(response) => Ok(utils::FetchResponse {
                    status: response.status().as_u16(),
                    headers: response
                        .headers()
                        .iter()
                        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
                        .collect(),
                    body: response.into_body().to_vec(),
                    attempts: attempt,
                }),
                Err(HttpError::HttpRequestDenied) => Err(refusal_error(&self.hooks)),
                Err(error) => Err(types::StepError::Transient(format!(
                    "{} {} failed after {attempt} attempt(s): {error}",
                    request.method, request.url
                ))),
            };
        }
    }

    fn new_id(&mut self, prefix: String) -> String {
        stage_ids::new_id(&prefix)
    }

    fn now_ms(&mut self) -> u64 {
        stage_ids::now_ms().max(0) as u64
    }

    fn sha256_hex(&mut self, data: Vec<u8>) -> String {
        stage_ids::sha256_hex(&data)
    }
}

impl Sandbox {
    fn compute_host(&self) -> Result<Arc<dyn ComputeHost>, types::StepError> {
        self.compute.clone().ok_or_else(|| types::StepError::Permanent("compute is not available here".into()))
    }

    /// Calls the embedded inference service (it holds the upstream's key and records the
    /// app's usage) within the invocation's outbound limits, and classifies its answer.
    async fn inference(&mut self, path: &str, body: String) -> Result<String, types::StepError> {
        let request = http::Request::post(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Bytes::from(body))
            .expect("a static path and header make a valid request");
        let response = match self.hooks.call().internal("inference", request).await {
            Ok(response) => response,
            Err(HttpError::HttpRequestDenied) => {
                return Err(refusal_error(&self.hooks));
            }
            Err(_) => return Err(types::StepError::Permanent("inference is not available on this server".into())),
        };
        if response.status().is_success() {
            return String::from_utf8(response.into_body().to_vec())
                .map_err(|_| types::StepError::Permanent("the inference answer is not UTF-8".into()));
        }
        Err(error_for_status(&response))
    }
}

/// A step error for a failed HTTP answer: its class from the status, its message from the
/// body (the envelope's or OpenAI's `error.message` when there is one).
fn error_for_status(response: &http::Response<Bytes>) -> types::StepError {
    let status = response.status();
    let text = String::from_utf8_lossy(response.body());
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|body| body["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(500).collect());
    let message = format!("{status}: {message}");
    match status.as_u16() {
        429 => types::StepError::RateLimited(retry_after(response).map_or(1000, |d| d.as_millis() as u64)),
        401 | 403 => types::StepError::Unauthorized(message),
        400 | 404 | 409 | 413 | 422 => types::StepError::InvalidInput(message),
        408 | 500..=599 => types::StepError::Transient(message),
        _ => types::StepError::Permanent(message),
    }
}

fn retryable_status(status: http::StatusCode) -> bool {
    status == http::StatusCode::REQUEST_TIMEOUT
        || status == http::StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// The wait a `Retry-After: <seconds>` header asks for.
fn retry_after<B>(response: &http::Response<B>) -> Option<Duration> {
    let seconds = response.headers().get(http::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(seconds.min(super::retry::MAX_DURATION_MS / 1000)))
}

/// The error a guest gets for a request the host refused: permanent, except when the
/// credential source is down for now.
fn refusal_error(hooks: &OutboundHooks) -> types::StepError {
    match &hooks.report.lock().expect("report poisoned").latest_refusal {
        Some(Refusal::Denied(what)) => types::StepError::Permanent(format!("capability denied: {what}")),
        Some(Refusal::Limit(what)) => types::StepError::Permanent(format!("outbound limit reached: {what}")),
        Some(Refusal::Credentials(error)) if error.transient => types::StepError::Transient(error.message.clone()),
        Some(Refusal::Credentials(error)) => types::StepError::Permanent(error.message.clone()),
        None => types::StepError::Permanent("the host refused the request".into()),
    }
}

/// The wasi:http request `utils.fetch` describes.
fn outgoing_request(
    request: &utils::FetchRequest,
) -> Result<http::Request<wasmtime_wasi_http::WasiBody>, types::StepError> {
    let invalid = |why: String| types::StepError::InvalidInput(why);
    let method = http::Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| invalid(format!("{:?} is not an HTTP method", request.method)))?;
    let uri: http::Uri = request.url.parse().map_err(|e| invalid(format!("{:?} is not a URL: {e}", request.url)))?;
    if uri.scheme().is_none() || uri.host().is_none() {
        return Err(invalid(format!("{:?} must be an absolute http(s) URL", request.url)));
    }
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in &request.headers {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(format!("{name:?} is not a header name")))?;
        let value =
            http::HeaderValue::from_str(value).map_err(|_| invalid(format!("the value of {name} is not valid")))?;
        builder = builder.header(name, value);
    }
    let body = Full::new(Bytes::from(request.body.clone())).map_err(|never| match never {}).boxed_unsync();
    builder.body(body).map_err(|e| invalid(e.to_string()))
}

/// The WIT error a failed workflow or step becomes for the guest.
fn step_error(failure: &StepFailure) -> types::StepError {
    let message = failure.to_string();
    match failure {
        StepFailure::Step { class, retry_after, .. } => match class {
            ErrorClass::InvalidInput => types::StepError::InvalidInput(message),
            ErrorClass::Transient => types::StepError::Transient(message),
            ErrorClass::RateLimited => {
                types::StepError::RateLimited(retry_after.map_or(1000, |d| d.as_millis() as u64))
            }
            ErrorClass::Unauthorized => types::StepError::Unauthorized(message),
            ErrorClass::Permanent => types::StepError::Permanent(message),
        },
        StepFailure::Timeout(_) => types::StepError::Transient(message),
        StepFailure::Credentials(_) => types::StepError::Unauthorized(message),
        _ => types::StepError::Permanent(message),
    }
}

/// The imports a backend may use: a step's (WASI without preopens, env or sockets,
/// wasi:http through [`OutboundHooks`], the log) plus inference, compute and utils.
pub(crate) fn linker(engine: &Engine) -> anyhow::Result<Linker<Sandbox>> {
    let mut linker = super::step::linker(engine)?;
    inference::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |state| state)?;
    compute::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |state| state)?;
    utils::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |state| state)?;
    Ok(linker)
}

pub(crate) type BackendPre = ProxyPre<Sandbox>;

/// Why the guest's side of a request ended early.
enum Handled {
    Instantiate(wasmtime::Error),
    Call(wasmtime::Error),
}

/// Serves one request with a fresh instance of the backend.
pub(crate) async fn serve(
    engine: &Engine,
    pre: &BackendPre,
    gateway: Arc<dyn Gateway>,
    allow_private: bool,
    call: BackendCall,
) -> BackendAnswer {
    let started = Instant::now();
    let limits = call.limits;
    let wall = limits.wall_time();
    let grant = Grant { gateway, policy: call.policy, identity: call.identity, limits, allow_private };
    let (mut store, recorders) = Sandbox::store(engine, grant, Some(call.compute));

    let (sender, receiver) = tokio::sync::oneshot::channel();
    let prepared = (|| -> wasmtime::Result<_> {
        let request = store.data_mut().http().new_incoming_request(Scheme::Http, call.request)?;
        let outparam = store.data_mut().http().new_response_outparam(sender)?;
        Ok((request, outparam))
    })();
    let (request, outparam) = match prepared {
        Ok(resources) => resources,
        Err(error) => {
            return answer(Err(BackendFailure::Instantiate(format!("{error:#}"))), started, &recorders, &store);
        }
    };
    let outparam_rep = outparam.rep();

    let handle = async {
        let proxy = pre.instantiate_async(&mut store).await.map_err(Handled::Instantiate)?;
        let result = proxy.wasi_http_incoming_handler().call_handle(&mut store, request, outparam).await;
        // A guest that returned without answering still holds the response slot: drop it, so
        // that the waiting side learns there will be no response.
        // (Only if the slot still holds the outparam: a consumed one's slot may be reused.)
        let table = store.data_mut().table();
        if table.get(&Resource::<HostResponseOutparam>::new_borrow(outparam_rep)).is_ok() {
            let _ = table.delete(Resource::<HostResponseOutparam>::new_own(outparam_rep));
        }
        result.map_err(Handled::Call)
    };
    let response_limit = limits.output_bytes;
    let respond = async {
        match receiver.await {
            Err(_) => Err(BackendFailure::NoResponse("the handler returned without setting a response".into())),
            Ok(Err(code)) => Err(BackendFailure::NoResponse(format!("the handler answered with the error {code:?}"))),
            Ok(Ok(response)) => {
                let (parts, body) = response.into_parts();
                match Limited::new(body, response_limit).collect().await {
                    Ok(body) => Ok(http::Response::from_parts(parts, body.to_bytes())),
                    Err(error) if error.is::<LengthLimitError>() => {
                        Err(BackendFailure::ResponseTooLarge { limit: response_limit })
                    }
                    Err(error) => Err(BackendFailure::NoResponse(format!("the response body failed: {error}"))),
                }
            }
        }
    };
    let both = async {
        tokio::pin!(handle, respond);
        let (mut handled, mut responded) = (None, None);
        while handled.is_none() || responded.is_none() {
            tokio::select! {
                result = &mut handle, if handled.is_none() => handled = Some(result),
                result = &mut respond, if responded.is_none() => {
                    // Past the size bound the guest may be blocked writing: stop here.
                    let stop = matches!(result, Err(BackendFailure::ResponseTooLarge { .. }));
                    responded = Some(result);
                    if stop {
                        break;
                    }
                }
            }
        }
        (handled, responded)
    };
    let finished = tokio::time::timeout(wall, both).await;
    let outcome = match finished {
        Err(_elapsed) => Err(BackendFailure::Timeout(wall)),
        Ok((Some(Err(handled)), _)) => Err(classify_trap(handled, store.data(), limits)),
        Ok((_, Some(response))) => response,
        Ok((_, None)) => Err(BackendFailure::NoResponse("the handler returned without setting a response".into())),
    };
    answer(outcome, started, &recorders, &store)
}

fn answer(
    outcome: Result<http::Response<Bytes>, BackendFailure>,
    started: Instant,
    recorders: &Recorders,
    store: &Store<Sandbox>,
) -> BackendAnswer {
    BackendAnswer {
        outcome,
        duration: started.elapsed(),
        outbound: recorders.report.lock().expect("report poisoned").clone(),
        stdout: recorders.stdout.text(),
        stderr: recorders.stderr.text(),
        log: store.data().log.lines().to_vec(),
    }
}

fn classify_trap(handled: Handled, state: &Sandbox, limits: Limits) -> BackendFailure {
    let (error, during_instantiation) = match handled {
        Handled::Instantiate(error) => (error, true),
        Handled::Call(error) => (error, false),
    };
    if error.chain().any(|cause| cause.is::<DeadlinePassed>()) {
        return BackendFailure::Timeout(limits.wall_time());
    }
    if state.limiter.refused.is_some() {
        return BackendFailure::MemoryExceeded { limit: limits.memory_bytes };
    }
    let message = format!("{error:#}");
    if during_instantiation { BackendFailure::Instantiate(message) } else { BackendFailure::Trap(message) }
}
