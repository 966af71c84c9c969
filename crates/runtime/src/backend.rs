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
use super::failure::{DEFAULT_RATE_LIMIT_WAIT, Failure, FailureClass, Subject};
use super::limits::Limits;
use super::outbound::{Gateway, Identity, OutboundHooks, OutboundReport};
use super::policy::Policy;
use super::retry::{Jitter, RetryPolicy};
use super::sandbox::{ComputeHost, Grant, Recorders, Sandbox};
use super::wit::{compute, inference, types, utils};
use stage_classes::ErrorClass;

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

/// Everything one backend request produced.
#[derive(Debug)]
pub struct BackendAnswer {
    pub outcome: Result<http::Response<Bytes>, Failure>,
    pub duration: Duration,
    pub outbound: OutboundReport,
    pub stdout: String,
    pub stderr: String,
    pub log: Vec<LogLine>,
}

impl BackendAnswer {
    /// A request that ended before its guest ran.
    pub(crate) fn failed(failure: Failure) -> BackendAnswer {
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
        self.compute_host()?.run_workflow(name, input).await.map_err(|failure| failure.to_wit())
    }

    async fn run_step(&mut self, kind: String, input: String) -> Result<String, types::StepError> {
        self.compute_host()?.run_step(kind, input).await.map_err(|failure| failure.to_wit())
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
                Err(HttpError::HttpRequestDenied) => match refusal(&self.hooks) {
                    refused if refused.class() == FailureClass::Transient => Some(None),
                    refused => return Err(refused.to_wit()),
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
                Err(HttpError::HttpRequestDenied) => Err(refusal(&self.hooks).to_wit()),
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
                return Err(refusal(&self.hooks).to_wit());
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
    let class = ErrorClass::for_status(status.as_u16());
    let retry_after =
        (class == ErrorClass::RateLimited).then(|| retry_after(response).unwrap_or(DEFAULT_RATE_LIMIT_WAIT));
    Failure::Classified { class, message, retry_after }.to_wit()
}

fn retryable_status(status: http::StatusCode) -> bool {
    ErrorClass::for_status(status.as_u16()).is_retryable()
}

/// The wait a `Retry-After: <seconds>` header asks for.
fn retry_after<B>(response: &http::Response<B>) -> Option<Duration> {
    let seconds = response.headers().get(http::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(seconds.min(super::retry::MAX_DURATION_MS / 1000)))
}

/// Why the host refused the guest's latest request: what a host function that sent it
/// reports.
fn refusal(hooks: &OutboundHooks) -> Failure {
    match &hooks.report.lock().expect("report poisoned").latest_refusal {
        Some(refusal) => refusal.into(),
        None => Failure::new(ErrorClass::Permanent, "the host refused the request"),
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

/// The imports a backend may use: a step's (WASI without preopens, env or sockets,
/// wasi:http through [`OutboundHooks`], the log) plus inference, compute and utils.
pub(crate) fn linker(engine: &Engine) -> anyhow::Result<Linker<Sandbox>> {
    let mut linker = super::sandbox::linker(engine)?;
    inference::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |state| state)?;
    compute::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |state| state)?;
    utils::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |state| state)?;
    Ok(linker)
}

pub(crate) type BackendPre = ProxyPre<Sandbox>;

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
            let failure = Failure::Instantiate { subject: Subject::Backend, why: format!("{error:#}") };
            return answer(Err(failure), started, &recorders, &store);
        }
    };
    let outparam_rep = outparam.rep();

    let handle = async {
        let proxy = pre.instantiate_async(&mut store).await.map_err(|e| (true, e))?;
        let result = proxy.wasi_http_incoming_handler().call_handle(&mut store, request, outparam).await;
        // A guest that returned without answering still holds the response slot: drop it, so
        // that the waiting side learns there will be no response.
        // (Only if the slot still holds the outparam: a consumed one's slot may be reused.)
        let table = store.data_mut().table();
        if table.get(&Resource::<HostResponseOutparam>::new_borrow(outparam_rep)).is_ok() {
            let _ = table.delete(Resource::<HostResponseOutparam>::new_own(outparam_rep));
        }
        result.map_err(|e| (false, e))
    };
    let response_limit = limits.output_bytes;
    let respond = async {
        match receiver.await {
            Err(_) => Err(Failure::NoResponse("the handler returned without setting a response".into())),
            Ok(Err(code)) => Err(Failure::NoResponse(format!("the handler answered with the error {code:?}"))),
            Ok(Ok(response)) => {
                let (parts, body) = response.into_parts();
                match Limited::new(body, response_limit).collect().await {
                    Ok(body) => Ok(http::Response::from_parts(parts, body.to_bytes())),
                    Err(error) if error.is::<LengthLimitError>() => {
                        Err(Failure::OutputTooLarge { subject: Subject::Backend, limit: response_limit })
                    }
                    Err(error) => Err(Failure::NoResponse(format!("the response body failed: {error}"))),
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
                    let stop = matches!(result, Err(Failure::OutputTooLarge { .. }));
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
        Err(_elapsed) => Err(Failure::Timeout { subject: Subject::Backend, limit: wall }),
        // A backend answers its refused requests itself: a crash is its own.
        Ok((Some(Err((during_instantiation, error))), _)) => {
            Err(store.data().classify_trap(Subject::Backend, &error, during_instantiation))
        }
        Ok((_, Some(response))) => response,
        Ok((_, None)) => Err(Failure::NoResponse("the handler returned without setting a response".into())),
    };
    answer(outcome, started, &recorders, &store)
}

fn answer(
    outcome: Result<http::Response<Bytes>, Failure>,
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
