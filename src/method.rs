//! The Gemini model methods the pool sends (`models/{model}:{method}`), by their API names.

use crate::error::Error;

/// A method of a model. Every one of them rotates keys and counts against the limits of its
/// model (embedding models are just other models to the quota state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    GenerateContent,
    /// Always sent with `alt=sse` (without it the service streams one JSON array).
    StreamGenerateContent,
    CountTokens,
    EmbedContent,
    BatchEmbedContents,
}

impl Method {
    pub const ALL: [Method; 5] = [
        Method::GenerateContent,
        Method::StreamGenerateContent,
        Method::CountTokens,
        Method::EmbedContent,
        Method::BatchEmbedContents,
    ];

    /// The API's name of the method, as in the URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::GenerateContent => "generateContent",
            Method::StreamGenerateContent => "streamGenerateContent",
            Method::CountTokens => "countTokens",
            Method::EmbedContent => "embedContent",
            Method::BatchEmbedContents => "batchEmbedContents",
        }
    }

    /// The URL's tail after the model: `:method`, and `?alt=sse` for the stream.
    pub fn url_suffix(self) -> &'static str {
        match self {
            Method::StreamGenerateContent => ":streamGenerateContent?alt=sse",
            Method::GenerateContent => ":generateContent",
            Method::CountTokens => ":countTokens",
            Method::EmbedContent => ":embedContent",
            Method::BatchEmbedContents => ":batchEmbedContents",
        }
    }

    /// The method named `name` (its API name, exactly); anything else is an invalid `method`
    /// argument that lists the names.
    pub fn parse(name: &str) -> Result<Method, Error> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<_> = Method::ALL.iter().map(|m| m.as_str()).collect();
                Error::invalid(
                    "method",
                    format!(
                        "unknown method {name:?}; expected one of {}",
                        names.join(", ")
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_anything_else_is_named_in_the_error() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.as_str()), Ok(m));
            assert!(m.url_suffix().starts_with(&format!(":{}", m.as_str())));
        }
        let e = Method::parse("generatecontent").unwrap_err().to_string();
        assert!(
            e.contains("`method`") && e.contains("\"generatecontent\""),
            "{e}"
        );
        assert!(Method::parse("").is_err());
    }
}
