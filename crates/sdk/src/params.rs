//! A task's parameters: PoCo's request `params` is either the app's arguments or a JSON
//! object with `iexec_args`, `iexec_input_files` (URLs fetched into `/in`) and, for results
//! encrypted for the beneficiary, `iexec_result_encryption: true` with `result_public_key`.

/// A task's parameters, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskParams {
    /// The app's arguments.
    pub args: Vec<String>,
    /// URLs of the input files, fetched into `/in`.
    pub input_files: Vec<String>,
    /// The beneficiary's secp256k1 public key when results are to be encrypted for them
    /// (`iexec_result_encryption: true` with `result_public_key`).
    pub result_key: Option<Vec<u8>>,
}

impl TaskParams {
    /// Parses a request's `params`.
    ///
    /// # Errors
    /// A message naming the field and what is wrong with it.
    pub fn parse(params: &str) -> Result<Self, String> {
        let trimmed = params.trim();
        if !trimmed.starts_with('{') {
            return Ok(Self {
                args: trimmed.split_whitespace().map(str::to_owned).collect(),
                input_files: Vec::new(),
                result_key: None,
            });
        }
        let value: serde_json::Value =
            serde_json::from_str(trimmed).map_err(|e| format!("params are not valid JSON: {e}"))?;
        let args = match value.get("iexec_args") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::String(args)) => {
                args.split_whitespace().map(str::to_owned).collect()
            }
            Some(other) => return Err(format!("params.iexec_args must be a string, got {other}")),
        };
        let input_files = match value.get("iexec_input_files") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(urls)) => urls
                .iter()
                .map(|u| {
                    u.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("params.iexec_input_files holds {u}, not a URL"))
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(format!(
                    "params.iexec_input_files must be a list of URLs, got {other}"
                ));
            }
        };
        match value.get("iexec_secrets") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(secrets)) if secrets.is_empty() => {}
            Some(_) => {
                return Err("params.iexec_secrets: requester secrets are delivered by a Secret Management Service after the enclave's attestation, and this network runs none yet: run the task without secrets".to_owned());
            }
        }
        let result_key = match value.get("iexec_result_encryption") {
            None | Some(serde_json::Value::Null | serde_json::Value::Bool(false)) => None,
            Some(serde_json::Value::Bool(true)) => {
                let key = value.get("result_public_key").and_then(|k| k.as_str()).ok_or(
                "params.iexec_result_encryption needs params.result_public_key (the beneficiary's public key, hex)",
            )?;
                Some(
                    alloy_primitives::hex::decode(key)
                        .map_err(|e| format!("params.result_public_key is not hex: {e}"))?,
                )
            }
            Some(other) => {
                return Err(format!(
                    "params.iexec_result_encryption must be true or false, got {other}"
                ));
            }
        };
        Ok(Self { args, input_files, result_key })
    }
}

/// The file name an input URL is saved under in `/in` (its last path segment).
pub fn input_name(url: &str, index: usize) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().unwrap_or_default();
    let safe = !name.is_empty() && name != "." && name != ".." && !name.contains('\\');
    if safe { name.to_owned() } else { format!("input-{}", index + 1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requester_secrets_are_refused_until_a_secret_service_exists() {
        let refused = TaskParams::parse(r#"{"iexec_secrets":{"1":"my-secret"}}"#).unwrap_err();
        assert!(refused.starts_with("params.iexec_secrets: requester secrets"), "{refused}");
        assert!(TaskParams::parse(r#"{"iexec_secrets":{}}"#).is_ok());
    }

    #[test]
    fn params_are_arguments_or_iexec_json() {
        assert_eq!(
            TaskParams::parse(" 64 48  2 2 ").unwrap(),
            TaskParams {
                args: vec!["64".into(), "48".into(), "2".into(), "2".into()],
                input_files: vec![],
                result_key: None
            }
        );
        let json = r#"{"iexec_args":"--top 5","iexec_input_files":["http://h/v1/results/bafk1","http://h/a/b.txt?x=1"]}"#;
        let params = TaskParams::parse(json).unwrap();
        assert_eq!(params.args, vec!["--top", "5"]);
        assert_eq!(params.input_files.len(), 2);
        assert_eq!(input_name(&params.input_files[0], 0), "bafk1");
        assert_eq!(input_name(&params.input_files[1], 1), "b.txt");
        assert_eq!(input_name("http://h/", 2), "input-3");
        assert_eq!(input_name("http://h/..", 0), "input-1");
        let bad = TaskParams::parse(r#"{"iexec_args": 5}"#).unwrap_err();
        assert!(bad.contains("iexec_args must be a string"), "{bad}");
        let bad = TaskParams::parse(r#"{"iexec_input_files": "http://x"}"#).unwrap_err();
        assert!(bad.contains("must be a list of URLs"), "{bad}");
        assert!(TaskParams::parse("{oops").unwrap_err().contains("not valid JSON"));
        let sealed =
            TaskParams::parse(r#"{"iexec_result_encryption":true,"result_public_key":"0x0102"}"#);
        assert_eq!(sealed.unwrap().result_key, Some(vec![1, 2]));
        let missing = TaskParams::parse(r#"{"iexec_result_encryption":true}"#).unwrap_err();
        assert!(missing.contains("needs params.result_public_key"), "{missing}");
    }
}
