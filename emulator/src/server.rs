//! The HTTP server: accepting connections, routing requests, shutting down.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::errors::ApiError;
use crate::http::{error_response, method_not_allowed, percent_decode, Body, CloseConnection};
use crate::method::Method;
use crate::state::Shared;
use crate::{api, control};

/// How long a shutdown waits for requests in flight before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// Serves connections from `listener` until `shutdown` fires (or its sender is dropped).
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).keep_alive(true);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors or a connection reset before accept: back off
                    // briefly instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Answers are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let service = service_fn(move |request| route(Arc::clone(&shared), request));
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // Errors here are clients going away or deliberate `close` faults.
            let _ = connection.await;
        });
    }
    drop(listener);
    // Idle keep-alive connections close at once; busy ones get a moment to finish.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

/// Sends a request to the control API or the Gemini endpoint.
async fn route(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, CloseConnection> {
    let path = request.uri().path().to_string();
    if let Some(endpoint) = path.strip_prefix("/_emulator/") {
        return control::handle(&shared, request, endpoint).await;
    }
    let Some(call) = ModelCall::parse(&path) else {
        return Ok(error_response(&ApiError::no_such_path(&path)));
    };
    let (expected, allowed) = match call.method {
        Method::ListModels | Method::GetModel => (hyper::Method::GET, "GET"),
        _ => (hyper::Method::POST, "POST"),
    };
    if request.method() != expected {
        return Ok(method_not_allowed(
            request.method().as_str(),
            &path,
            allowed,
        ));
    }
    api::handle(shared, request, call.version, &call.model, call.method).await
}

/// A path of the form `/{version}/models/{model}:{method}`, `/{version}/models/{model}` or
/// `/{version}/models`.
#[derive(Debug, PartialEq, Eq)]
struct ModelCall {
    version: &'static str,
    /// Empty for the list.
    model: String,
    method: Method,
}

impl ModelCall {
    fn parse(path: &str) -> Option<ModelCall> {
        let (version, rest) = ["v1beta", "v1"].into_iter().find_map(|version| {
            let rest = path.strip_prefix('/')?.strip_prefix(version)?;
            Some((version, rest.strip_prefix("/models")?))
        })?;
        if rest.is_empty() || rest == "/" {
            return Some(ModelCall {
                version,
                model: String::new(),
                method: Method::ListModels,
            });
        }
        // Some clients escape the colon.
        let rest = percent_decode(rest.strip_prefix('/')?);
        let (model, method) = match rest.rsplit_once(':') {
            Some((model, action)) => (model, Method::from_action(action)?),
            None => (rest.as_str(), Method::GetModel),
        };
        if model.is_empty() || model.contains('/') {
            return None;
        }
        Some(ModelCall {
            version,
            model: model.to_string(),
            method,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_model_paths() {
        let call = ModelCall::parse("/v1beta/models/gemini-2.5-flash:generateContent").unwrap();
        assert_eq!(call.version, "v1beta");
        assert_eq!(call.model, "gemini-2.5-flash");
        assert_eq!(call.method, Method::GenerateContent);
        let call = ModelCall::parse("/v1/models/m%3AstreamGenerateContent").unwrap();
        assert_eq!((call.version, call.model.as_str()), ("v1", "m"));
        assert_eq!(call.method, Method::StreamGenerateContent);
        assert_eq!(ModelCall::parse("/v2/models/m:generateContent"), None);
        assert_eq!(ModelCall::parse("/v1beta/models/:generateContent"), None);
        assert_eq!(ModelCall::parse("/v1beta/models/a/b:generateContent"), None);
        assert_eq!(ModelCall::parse("/v1beta/models/m:nope"), None);
        assert_eq!(ModelCall::parse("/v1beta/modelsx"), None);
        let get = ModelCall::parse("/v1beta/models/gemini").unwrap();
        assert_eq!(
            (get.model.as_str(), get.method),
            ("gemini", Method::GetModel)
        );
        let list = ModelCall::parse("/v1/models").unwrap();
        assert_eq!((list.model.as_str(), list.method), ("", Method::ListModels));
    }
}
