//! Endpoint URLs of adapters and the gateway: `https://host:port`, and the
//! host a TLS client verifies the server's certificate against.

/// The host part of an endpoint URL, for TLS server-name verification.
pub fn endpoint_host(url: &str) -> Result<String, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("endpoint `{url}` is not a URL: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("endpoint `{url}` must use https://"));
    }
    if uri.port_u16().is_none() {
        return Err(format!("endpoint `{url}` must name a port"));
    }
    let host = uri
        .host()
        .ok_or_else(|| format!("endpoint `{url}` has no host"))?;
    Ok(host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_must_be_https_with_port() {
        assert_eq!(
            endpoint_host("https://127.0.0.1:7000").as_deref(),
            Ok("127.0.0.1")
        );
        assert_eq!(endpoint_host("https://[::1]:7000").as_deref(), Ok("::1"));
        assert_eq!(
            endpoint_host("https://adapter.tax.gov:443").as_deref(),
            Ok("adapter.tax.gov")
        );
        assert!(endpoint_host("http://127.0.0.1:7000").is_err());
        assert!(endpoint_host("https://127.0.0.1").is_err());
        assert!(endpoint_host("not a url").is_err());
    }
}
