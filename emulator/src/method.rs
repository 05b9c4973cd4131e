//! The methods the emulator serves, and which models serve which.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One API method. Serialized (in faults and the log) by its name in the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum Method {
    #[serde(rename = "generateContent")]
    GenerateContent,
    #[serde(rename = "streamGenerateContent")]
    StreamGenerateContent,
    #[serde(rename = "countTokens")]
    CountTokens,
    #[serde(rename = "embedContent")]
    EmbedContent,
    #[serde(rename = "batchEmbedContents")]
    BatchEmbedContents,
    /// `GET /{version}/models`
    #[serde(rename = "models.list")]
    ListModels,
    /// `GET /{version}/models/{model}`
    #[serde(rename = "models.get")]
    GetModel,
    /// `POST /upload/{version}/files`: starts a resumable upload.
    #[serde(rename = "files.create")]
    CreateFile,
    /// `POST|PUT /upload/{version}/files?upload_id=ID`: sends bytes, finalizes, queries.
    #[serde(rename = "files.upload")]
    UploadFile,
    #[serde(rename = "files.get")]
    GetFile,
    #[serde(rename = "files.list")]
    ListFiles,
    #[serde(rename = "files.delete")]
    DeleteFile,
    #[serde(rename = "cachedContents.create")]
    CreateCachedContent,
    #[serde(rename = "cachedContents.get")]
    GetCachedContent,
    #[serde(rename = "cachedContents.list")]
    ListCachedContents,
    #[serde(rename = "cachedContents.patch")]
    PatchCachedContent,
    #[serde(rename = "cachedContents.delete")]
    DeleteCachedContent,
}

impl Method {
    /// The method of a `POST .../models/{model}:{name}` path.
    pub fn from_action(name: &str) -> Option<Method> {
        Some(match name {
            "generateContent" => Method::GenerateContent,
            "streamGenerateContent" => Method::StreamGenerateContent,
            "countTokens" => Method::CountTokens,
            "embedContent" => Method::EmbedContent,
            "batchEmbedContents" => Method::BatchEmbedContents,
            _ => return None,
        })
    }

    /// The name used in the API, in faults and in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::GenerateContent => "generateContent",
            Method::StreamGenerateContent => "streamGenerateContent",
            Method::CountTokens => "countTokens",
            Method::EmbedContent => "embedContent",
            Method::BatchEmbedContents => "batchEmbedContents",
            Method::ListModels => "models.list",
            Method::GetModel => "models.get",
            Method::CreateFile => "files.create",
            Method::UploadFile => "files.upload",
            Method::GetFile => "files.get",
            Method::ListFiles => "files.list",
            Method::DeleteFile => "files.delete",
            Method::CreateCachedContent => "cachedContents.create",
            Method::GetCachedContent => "cachedContents.get",
            Method::ListCachedContents => "cachedContents.list",
            Method::PatchCachedContent => "cachedContents.patch",
            Method::DeleteCachedContent => "cachedContents.delete",
        }
    }

    /// Calls on a model, which count against that (project, model)'s quotas. Reading model
    /// metadata and managing files and cached contents do not: they have no generation quota
    /// in the real service.
    pub fn uses_quota(self) -> bool {
        matches!(
            self,
            Method::GenerateContent
                | Method::StreamGenerateContent
                | Method::CountTokens
                | Method::EmbedContent
                | Method::BatchEmbedContents
        )
    }

    /// Requests about a resource tied to a project (a file, an upload, a cached content),
    /// which name no model.
    pub fn is_resource(self) -> bool {
        !self.uses_quota() && !matches!(self, Method::ListModels | Method::GetModel)
    }

    /// Whether `model` serves this method: embedding models (any name containing
    /// "embedding") embed and count tokens; every other model generates and counts tokens.
    pub fn served_by(self, model: &str) -> bool {
        let embedding = is_embedding_model(model);
        match self {
            Method::GenerateContent | Method::StreamGenerateContent => !embedding,
            Method::EmbedContent | Method::BatchEmbedContents => embedding,
            _ => true,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Embedding models are told apart by name, as the real catalog names them.
pub fn is_embedding_model(model: &str) -> bool {
    model.contains("embedding")
}

/// Models the real service no longer serves: `gemini-pro` and every 1.x model.
pub fn is_retired(model: &str) -> bool {
    model.starts_with("gemini-pro") || model.starts_with("gemini-1.")
}
