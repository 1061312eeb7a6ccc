use super::*;

fn found(text: &str) -> Vec<(String, &str)> {
    let mut hits = Vec::new();
    crate::sensitive::words::scan(text, None, &mut hits);
    scan_client_secrets(text.as_bytes(), &mut hits);
    crate::sensitive::resolve(hits)
        .iter()
        .filter(|h| {
            !matches!(
                h.ty,
                SensitiveType::Classification(_)
                    | SensitiveType::GenericSecret
                    | SensitiveType::PaymentCard
                    | SensitiveType::Phone
                    | SensitiveType::IpAddress
                    | SensitiveType::Iban
                    | SensitiveType::UsSsn
            )
        })
        .map(|h| (h.ty.name().to_owned(), &text[h.start..h.end]))
        .collect()
}

fn one(text: &str, kind: &str, value: &str) {
    assert_eq!(found(text), [(kind.to_owned(), value)], "{text}");
}

fn none(text: &str) {
    assert!(found(text).is_empty(), "{text}: {:?}", found(text));
}

const B62: &str = "Zq8Xk2Lm9Pn4Rs7Tv1Wy3Ab5Cd6Ef0GhIjKoMnOpQrStUvWxYz";

#[test]
fn aws_access_key_ids_have_sixteen_characters() {
    one(
        "key AKIAZ7Q2L4M9N8P3R6ST end",
        "aws_access_key",
        "AKIAZ7Q2L4M9N8P3R6ST",
    );
    one(
        "\"ASIAY3K8W2Q9E5R7T1UP\"",
        "aws_access_key",
        "ASIAY3K8W2Q9E5R7T1UP",
    );
    none("AKIAZ7Q2L4M9N8P3R6S");
    none("AKIAZ7Q2L4M9N8P3R6STU");
    none("AKIAIOSFODNN7EXAMPLE");
    none("xAKIAZ7Q2L4M9N8P3R6ST");
    none("AKIAXXXXXXXXXXXXXXXX");
}

#[test]
fn github_gitlab_npm_and_pypi_tokens() {
    let ghp = format!("ghp_{}", &B62[..36]);
    one(&format!("GITHUB_TOKEN={ghp}\n"), "github_token", &ghp);
    let pat = format!("github_pat_{}_{}", &B62[..22], &format!("{B62}{B62}")[..59]);
    one(&format!("token: {pat}"), "github_token", &pat);
    none(&format!("ghp_{}", &B62[..35]));
    none("ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    let glpat = format!("glpat-{}", &B62[..20]);
    one(&format!("'{glpat}'"), "gitlab_token", &glpat);
    let npm = format!("npm_{}", &B62[..36]);
    one(
        &format!("//registry.npmjs.org/:_authToken={npm}"),
        "npm_token",
        &npm,
    );
    let pypi = format!("pypi-AgEIcHlwaS5vcmc{}", &format!("{B62}{B62}")[..60]);
    one(&format!("password = {pypi}"), "pypi_token", &pypi);
}

#[test]
fn slack_stripe_sendgrid_and_twilio() {
    let slack = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx";
    one(&format!("SLACK_BOT_TOKEN={slack}"), "slack_token", slack);
    none("xoxb-not-a-token");
    let hook = "https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/AbCdEfGhIjKlMnOpQrStUvWx";
    one(&format!("url: {hook}\n"), "slack_webhook", hook);
    let live = format!("sk_live_{}", &B62[..24]);
    one(&format!("Stripe.api_key = '{live}'"), "stripe_key", &live);
    none(&format!("pk_live_{}", &B62[..24]));
    none("sk_live_<your-key-here>");
    let sg = format!("SG.{}.{}", &B62[..22], &B62[..43]);
    one(&format!("SENDGRID_API_KEY={sg}"), "sendgrid_key", &sg);
    let tw = "SK0123456789abcdef0123456789abcdef";
    one(&format!("api key {tw}."), "twilio_key", tw);
    none("TASK0123456789abcdef0123456789abcdef");
}

#[test]
fn openai_anthropic_google_keys() {
    let proj = format!("sk-proj-{}", &format!("{B62}{B62}")[..64]);
    one(&format!("OPENAI_API_KEY={proj}"), "openai_key", &proj);
    let legacy = format!("sk-{}", &B62[..48]);
    one(&format!("key={legacy}"), "openai_key", &legacy);
    let ant = format!("sk-ant-api03-{}AA", &format!("{B62}{B62}")[..93]);
    one(&format!("x-api-key: {ant}"), "anthropic_key", &ant);
    none("pip install scikit-learn sk-learn");
    none(&format!("sk-{}", &B62[..30]));
    let gcp = format!("AIza{}", &B62[..35]);
    one(&format!("?key={gcp}&q=1"), "gcp_api_key", &gcp);
    none(&format!("AIza{}", &B62[..34]));
    let oauth = format!("GOCSPX-{}", &B62[..28]);
    one(
        &format!("\"client_secret\":\"{oauth}\""),
        "google_oauth_secret",
        &oauth,
    );
}

#[test]
fn azure_keys_and_connection_strings() {
    let key = format!("{}==", &format!("{B62}{B62}")[..86]);
    let conn = format!(
        "DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={key};EndpointSuffix=core.windows.net"
    );
    one(&format!("\"{conn}\""), "azure_connection_string", &conn);
    one(&format!("AccountKey={key}"), "azure_storage_key", &key);
    none(&format!("AccountKey={}==", &B62[..40]));
    let secret = "abC8Q~dEfGhIjKlMnOpQrStUvWxYz0123456789a";
    one(
        &format!("client secret {secret} "),
        "azure_client_secret",
        secret,
    );
    none("abC8Q~short");
}

#[test]
fn private_key_blocks_complete_escaped_and_truncated() {
    let body = format!("{B62}{B62}").chars().take(64).collect::<String>();
    let pem =
        format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n{body}\n-----END RSA PRIVATE KEY-----");
    one(&format!("key:\n{pem}\nrest"), "private_key", &pem);
    let escaped = format!("-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----");
    one(
        &format!("{{\"k\": \"{escaped}\\n\"}}"),
        "private_key",
        &escaped,
    );
    let cut = format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n{body}");
    one(&cut, "private_key", &cut);
    none(&format!(
        "-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----"
    ));
    none("-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----");
}

#[test]
fn jwts_must_decode_to_json_with_an_alg() {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let jwt = format!(
        "{}.{}.{}",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64(r#"{"sub":"1234567890","name":"Jane","iat":1516239022}"#),
        &B62[..43]
    );
    one(&format!("Authorization: Bearer {jwt}"), "jwt", &jwt);
    none(&format!(
        "{}.{}",
        b64(r#"{"alg":"HS256"}"#),
        b64(r#"{"a":1}"#)
    ));
    none(&format!(
        "{}.{}.sig",
        b64(r#"{"typ":"JWT"}"#),
        b64(r#"{"a":1}"#)
    ));
    none("eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln");
}

#[test]
fn service_account_key_files_need_a_private_key() {
    let body = format!("{B62}{B62}").chars().take(64).collect::<String>();
    let sa = format!(
        "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"p\",\n  \"private_key_id\": \"abc\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n\",\n  \"client_email\": \"x@p.iam.gserviceaccount.com\"\n}}"
    );
    let hits = found(&sa);
    assert!(
        hits.iter().any(|(k, _)| k == "gcp_service_account"),
        "{hits:?}"
    );
    none("{\"type\": \"service_account\", \"project_id\": \"p\"}");
}
