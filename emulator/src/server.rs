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
use crate::files::FileTarget;
use crate::http::{
    error_response, method_not_allowed, percent_decode, query_param, Body, CloseConnection,
};
use crate::method::Method;
use crate::state::Shared;
use crate::{api, caches, control, files};

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
    if let Some(call) = ResourceCall::parse(&path, request.uri().query()) {
        return route_resource(shared, request, call, &path).await;
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

/// Sends a files or cachedContents request to its handler, or answers 405 when the HTTP
/// method does not fit the path.
async fn route_resource(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    call: ResourceCall,
    path: &str,
) -> Result<Response<Body>, CloseConnection> {
    use hyper::Method as Http;
    let http = request.method().clone();
    let method = match (&call.target, &http) {
        (Target::Upload(None), &Http::POST) => Some(Method::CreateFile),
        (Target::Upload(Some(_)), &Http::POST | &Http::PUT) => Some(Method::UploadFile),
        (Target::Files, &Http::GET) => Some(Method::ListFiles),
        (Target::File(_), &Http::GET) => Some(Method::GetFile),
        (Target::File(_), &Http::DELETE) => Some(Method::DeleteFile),
        (Target::CachedContents, &Http::POST) => Some(Method::CreateCachedContent),
        (Target::CachedContents, &Http::GET) => Some(Method::ListCachedContents),
        (Target::CachedContent(_), &Http::GET) => Some(Method::GetCachedContent),
        (Target::CachedContent(_), &Http::PATCH) => Some(Method::PatchCachedContent),
        (Target::CachedContent(_), &Http::DELETE) => Some(Method::DeleteCachedContent),
        _ => None,
    };
    let Some(method) = method else {
        let allowed = match call.target {
            Target::Upload(None) => "POST",
            Target::Upload(Some(_)) => "POST, PUT",
            Target::Files => "GET",
            Target::File(_) => "GET, DELETE",
            Target::CachedContents => "GET, POST",
            Target::CachedContent(_) => "GET, PATCH, DELETE",
        };
        return Ok(method_not_allowed(http.as_str(), path, allowed));
    };
    let version = call.version;
    match call.target {
        Target::Upload(upload_id) => {
            let target = FileTarget::Upload(upload_id);
            files::handle(shared, request, version, method, target).await
        }
        Target::Files => files::handle(shared, request, version, method, FileTarget::List).await,
        Target::File(id) => {
            files::handle(shared, request, version, method, FileTarget::File(id)).await
        }
        Target::CachedContents => caches::handle(shared, request, version, method, None).await,
        Target::CachedContent(id) => {
            caches::handle(shared, request, version, method, Some(id)).await
        }
    }
}

/// A path about a resource tied to a project: `/upload/{version}/files[?upload_id=ID]`,
/// `/{version}/files[/{id}]`, `/{version}/cachedContents[/{id}]`.
#[derive(Debug, PartialEq, Eq)]
struct ResourceCall {
    version: &'static str,
    target: Target,
}

#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// The upload endpoint; the `upload_id` once an upload has started.
    Upload(Option<String>),
    Files,
    File(String),
    CachedContents,
    CachedContent(String),
}

impl ResourceCall {
    fn parse(path: &str, query: Option<&str>) -> Option<ResourceCall> {
        let (upload, path) = match path.strip_prefix("/upload") {
            Some(rest) => (true, rest),
            None => (false, path),
        };
        let (version, rest) = ["v1beta", "v1"].into_iter().find_map(|version| {
            let rest = path.strip_prefix('/')?.strip_prefix(version)?;
            Some((version, rest.strip_prefix('/')?))
        })?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (collection, id) = match rest.split_once('/') {
            Some((_, id)) if id.is_empty() || id.contains('/') => return None,
            Some((collection, id)) => (collection, Some(percent_decode(id))),
            None => (rest, None),
        };
        let target = match (upload, collection, id) {
            (true, "files", None) => {
                Target::Upload(query_param(query, "upload_id").filter(|id| !id.is_empty()))
            }
            (true, _, _) => return None,
            (false, "files", None) => Target::Files,
            (false, "files", Some(id)) => Target::File(id),
            (false, "cachedContents", None) => Target::CachedContents,
            (false, "cachedContents", Some(id)) => Target::CachedContent(id),
            _ => return None,
        };
        Some(ResourceCall { version, target })
    }
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

    #[test]
    fn parses_resource_paths() {
        let parse = |path: &str, query: Option<&str>| ResourceCall::parse(path, query);
        let upload = parse("/upload/v1beta/files", None).unwrap();
        assert_eq!(
            (upload.version, upload.target),
            ("v1beta", Target::Upload(None))
        );
        let chunk = parse(
            "/upload/v1/files",
            Some("upload_id=u1&upload_protocol=resumable"),
        );
        assert_eq!(chunk.unwrap().target, Target::Upload(Some("u1".into())));
        assert_eq!(parse("/v1/files", None).unwrap().target, Target::Files);
        assert_eq!(
            parse("/v1beta/files/abc", None).unwrap().target,
            Target::File("abc".into())
        );
        assert_eq!(
            parse("/v1beta/cachedContents/x1", None).unwrap().target,
            Target::CachedContent("x1".into())
        );
        assert_eq!(
            parse("/v1/cachedContents", None).unwrap().target,
            Target::CachedContents
        );
        assert_eq!(parse("/v2/files", None), None);
        assert_eq!(parse("/upload/v1beta/cachedContents", None), None);
        assert_eq!(parse("/v1beta/files/a/b", None), None);
        assert_eq!(parse("/v1beta/models/m", None), None);
    }
}
