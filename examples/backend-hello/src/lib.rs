//! An example Stage API backend, served at `/stage/<app>/api/*`:
//!
//! * `GET /hello` — a greeting naming the verified caller, if any;
//! * `POST /echo` — the request body back, with its method and path in headers;
//! * `GET /summary?text=…` — a one-line summary from the configured inference API;
//! * `POST /submit` — runs the app's `submit` workflow with the JSON body as its input.

use stage_guest_sdk::backend::{Request, Response};
use stage_guest_sdk::{StepError, compute, inference, json};

/// The model `/summary` asks for unless `?model=` names another.
const DEFAULT_MODEL: &str = "gpt-4o-mini";

fn handle(request: Request) -> Response {
    match (request.method.as_str(), request.route()) {
        ("GET", "/hello") => hello(&request),
        ("POST", "/echo") => Response::new(200)
            .header("content-type", request.header("content-type").unwrap_or("application/octet-stream"))
            .header("x-echo-method", &request.method)
            .header("x-echo-path", &request.path)
            .body(request.body),
        ("GET", "/summary") => summary(&request),
        ("POST", "/submit") => submit(&request),
        (_, "/hello" | "/echo" | "/summary" | "/submit") => {
            Response::json(405, &json!({ "error": format!("{} is not allowed here", request.method) }))
        }
        (_, route) => Response::json(404, &json!({ "error": format!("no route {route}") })),
    }
}

fn hello(request: &Request) -> Response {
    let greeting = match request.header("x-stage-user-name").or(request.user_email()) {
        Some(who) => format!("Hello, {who}!"),
        None => "Hello, world!".to_owned(),
    };
    Response::json(
        200,
        &json!({ "message": greeting, "app": request.app_sid(), "user": {
            "email": request.user_email(), "id": request.user_id() } }),
    )
}

fn summary(request: &Request) -> Response {
    let param = |name: &str| {
        request.query().unwrap_or_default().split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| value.replace('+', " "))
        })
    };
    let text = param("text").unwrap_or_else(|| "Stage runs AI-built apps safely.".to_owned());
    let model = param("model").unwrap_or_else(|| DEFAULT_MODEL.to_owned());
    let asked = json!({
        "model": model,
        "messages": [
            { "role": "system", "content": "Summarise the user's text in one short sentence." },
            { "role": "user", "content": text },
        ],
    });
    match inference::chat(&asked) {
        Ok(answer) => Response::json(
            200,
            &json!({ "summary": inference::first_message(&answer), "model": answer["model"], "usage": answer["usage"] }),
        ),
        Err(error) => failure(&error),
    }
}

fn submit(request: &Request) -> Response {
    let input = match request.json() {
        Ok(input) => input,
        Err(e) => return Response::json(400, &json!({ "error": format!("the body is not JSON: {e}") })),
    };
    match compute::run_workflow("submit", &input) {
        Ok(answer) => Response::json(answer.status, &answer.body).header("x-stage-run-id", &answer.run_id),
        Err(error) => failure(&error),
    }
}

/// A host error as an HTTP answer: 400 for bad input, 401 for refused credentials, 429
/// when rate limited, 502 otherwise.
fn failure(error: &StepError) -> Response {
    let status = match error {
        StepError::InvalidInput(_) => 400,
        StepError::Unauthorized(_) => 401,
        StepError::RateLimited(_) => 429,
        StepError::Transient(_) | StepError::Permanent(_) => 502,
    };
    Response::json(status, &json!({ "error": error.to_string() }))
}

stage_guest_sdk::backend!(handle);
