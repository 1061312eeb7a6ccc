//! Generators for credentials, key blocks, JWTs and assigned secrets. Values
//! follow the providers' documented prefixes, alphabets and lengths; the
//! near-misses are the values people paste instead: placeholders, the
//! documentation's example keys, publishable keys, truncated copies.

use base64::Engine as _;

use super::carriers::{embed, filler};
use super::families::{COMPANIES, FIRST, LAST};
use super::{ALNUM, B64, B64URL, DIGITS, Doc, HEX, Rng, UPPER};

/// The alphabet of AWS key ids (RFC 4648 base32).
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// The alphabet of Entra ID client secrets.
const AZ_SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_~.-";

/// Frames for a credential in prose.
const CRED_PROSE: [(&str, &str); 6] = [
    (
        "I accidentally pasted ",
        " into the channel, please rotate it.",
    ),
    ("Use ", " for the staging deploy."),
    ("The old key was ", "\n"),
    ("config loaded, credential=", " source=env\n"),
    ("Here you go: ", ""),
    ("`", "`"),
];

/// One example of a credential `family` into `d`.
pub(crate) fn make(family: &str, r: &mut Rng, d: &mut Doc, positive: bool) {
    // Near-misses sit in the same key-named fields as the real thing, where a
    // secret-looking value is rightly reported as a generic secret.
    if !positive {
        d.tolerated.push("generic_secret");
    }
    match family {
        "aws_access_key" => aws_access_key(r, d, positive),
        "aws_secret_key" => aws_secret_key(r, d, positive),
        "gcp_api_key" => gcp_api_key(r, d, positive),
        "gcp_service_account" => service_account(r, d, positive),
        "google_oauth_secret" => google_oauth(r, d, positive),
        "azure_storage_key" => azure_storage_key(r, d, positive),
        "azure_connection_string" => azure_connection_string(r, d, positive),
        "azure_client_secret" => azure_client_secret(r, d, positive),
        "github_token" => github(r, d, positive),
        "gitlab_token" => gitlab(r, d, positive),
        "slack_token" => slack(r, d, positive),
        "slack_webhook" => slack_webhook(r, d, positive),
        "stripe_key" => stripe(r, d, positive),
        "openai_key" => openai(r, d, positive),
        "anthropic_key" => anthropic(r, d, positive),
        "npm_token" => npm(r, d, positive),
        "pypi_token" => pypi(r, d, positive),
        "sendgrid_key" => sendgrid(r, d, positive),
        "twilio_key" => twilio(r, d, positive),
        "private_key" => private_key(r, d, positive),
        "jwt" => jwt(r, d, positive),
        "generic_secret" => generic(r, d, positive),
        _ => {}
    }
}

/// Embeds a credential under one of `fields`, or in a credential sentence.
fn put(r: &mut Rng, d: &mut Doc, kind: &str, positive: bool, fields: &[&str], value: &str) {
    let field = *r.pick(fields);
    let label = positive.then_some(kind);
    embed(r, d, label, field, value, &CRED_PROSE);
}

fn aws_access_key(r: &mut Rng, d: &mut Doc, positive: bool) {
    const FIELDS: [&str; 4] = [
        "AWS_ACCESS_KEY_ID",
        "aws_access_key_id",
        "AccessKeyId",
        "access_key",
    ];
    let prefix = *r.pick(&["AKIA", "ASIA"]);
    if positive {
        let v = format!("{prefix}{}", r.string(16, BASE32));
        put(r, d, "aws_access_key", true, &FIELDS, &v);
        return;
    }
    let v = match r.below(5) {
        0 => format!("{prefix}{}", r.string(15, BASE32)),
        1 => format!("{prefix}{}", r.string(17, BASE32)),
        2 => "AKIAIOSFODNN7EXAMPLE".to_owned(),
        3 => "AKIAXXXXXXXXXXXXXXXX".to_owned(),
        _ => format!("AIDA{}", r.string(17, BASE32)),
    };
    put(r, d, "aws_access_key", false, &FIELDS, &v);
}

fn aws_secret_key(r: &mut Rng, d: &mut Doc, positive: bool) {
    let secret = r.string(40, B64);
    let (v, ok) = if positive {
        (secret, true)
    } else {
        match r.below(4) {
            0 => (r.string(39, B64), false),
            1 => (r.string(41, B64), false),
            2 => ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(), false),
            _ => {
                // Forty base64 characters with no AWS name near: a checksum.
                let v = r.string(40, B64);
                d.s("sha1 checksum ").v(None, &v).s(" verified\n");
                return;
            }
        }
    };
    let label = ok.then_some("aws_secret_key");
    match r.below(5) {
        0 => {
            d.s("[default]\naws_access_key_id = ");
            let id = format!("AKIA{}", r.string(16, BASE32));
            d.v(Some("aws_access_key"), &id)
                .s("\naws_secret_access_key = ")
                .v(label, &v)
                .s("\nregion = eu-west-1\n");
        }
        1 => {
            d.s("export AWS_SECRET_ACCESS_KEY=").v(label, &v).s("\n");
        }
        2 => {
            d.s("{\"Credentials\": {\"SecretAccessKey\": \"")
                .v(label, &v)
                .s("\", \"Expiration\": \"2024-05-14T10:21:33Z\"}}");
        }
        3 => {
            d.s("secret_access_key: ").v(label, &v).s("\n");
        }
        _ => {
            d.s("aws_secret_access_key=\"").v(label, &v).s("\"");
        }
    }
}

fn gcp_api_key(r: &mut Rng, d: &mut Doc, positive: bool) {
    const FIELDS: [&str; 4] = ["GOOGLE_API_KEY", "apiKey", "maps_key", "api_key"];
    if positive {
        let v = format!("AIzaSy{}", r.string(33, B64URL));
        if r.chance(25) {
            d.s("https://maps.googleapis.com/maps/api/geocode/json?address=Berlin&key=")
                .v(Some("gcp_api_key"), &v);
        } else {
            put(r, d, "gcp_api_key", true, &FIELDS, &v);
        }
        return;
    }
    let v = match r.below(4) {
        0 => format!("AIzaSy{}", r.string(32, B64URL)),
        1 => "AIzaSyXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX".to_owned(),
        2 => "AIza...".to_owned(),
        _ => format!(
            "aizasy{}",
            r.string(33, b"abcdefghijklmnopqrstuvwxyz0123456789")
        ),
    };
    put(r, d, "gcp_api_key", false, &FIELDS, &v);
}

fn pem_body(r: &mut Rng, lines: usize, newline: &str) -> String {
    let mut out = String::new();
    for i in 0..lines {
        if i > 0 {
            out.push_str(newline);
        }
        let n = if i + 1 == lines {
            r.range(8, 64) as usize
        } else {
            64
        };
        out.push_str(&r.string(n, B64));
    }
    out
}

fn service_account(r: &mut Rng, d: &mut Doc, positive: bool) {
    let company = *r.pick(&COMPANIES);
    let project = format!(
        "{company}-{}-{}",
        r.pick(&["prod", "data", "ml"]),
        r.digits(6)
    );
    let account = format!("{}-{}", r.pick(&["svc", "deployer", "etl"]), r.digits(3));
    let email = format!("{account}@{project}.iam.gserviceaccount.com");
    let key_id = r.string(40, HEX);
    let client_id = r.digits(21);
    let nl = if r.chance(50) { "\n" } else { "" };
    let ind = if nl.is_empty() { "" } else { "  " };
    let sp = if nl.is_empty() { "" } else { " " };
    let mut json = Doc::default();
    if r.chance(40) {
        json.s("Here is the key file you asked for:\n");
    }
    let start = json.text.len();
    json.s(&format!(
        "{{{nl}{ind}\"type\":{sp}\"{}\",{nl}",
        if positive || r.chance(50) {
            "service_account"
        } else {
            "authorized_user"
        }
    ));
    json.s(&format!("{ind}\"project_id\":{sp}\"{project}\",{nl}"));
    if positive {
        json.s(&format!("{ind}\"private_key_id\":{sp}\"{key_id}\",{nl}"));
        let body = pem_body(r, 26, "\\n");
        json.s(&format!(
            "{ind}\"private_key\":{sp}\"-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n\",{nl}"
        ));
    }
    json.s(&format!("{ind}\"client_email\":{sp}\""));
    json.v(Some("email"), &email);
    json.s(&format!(
        "\",{nl}{ind}\"client_id\":{sp}\"{client_id}\",{nl}"
    ));
    json.s(&format!(
        "{ind}\"auth_uri\":{sp}\"https://accounts.google.com/o/oauth2/auth\",{nl}{ind}\"token_uri\":{sp}\"https://oauth2.googleapis.com/token\"{nl}}}"
    ));
    let end = json.text.len();
    let offset = d.text.len();
    d.text.push_str(&json.text);
    for mut label in json.labels {
        label.span.start += offset;
        label.span.end += offset;
        d.labels.push(label);
    }
    if positive {
        d.labels.push(super::Label {
            kind: "gcp_service_account".to_owned(),
            span: crate::Span::new(offset + start, offset + end),
        });
    }
}

fn google_oauth(r: &mut Rng, d: &mut Doc, positive: bool) {
    let v = if positive {
        format!("GOCSPX-{}", r.string(28, B64URL))
    } else {
        match r.below(3) {
            0 => format!("GOCSPX-{}", r.string(20, B64URL)),
            1 => "GOCSPX-<client-secret>".to_owned(),
            _ => "GOCSPX-****************************".to_owned(),
        }
    };
    let label = positive.then_some("google_oauth_secret");
    if r.chance(40) {
        let client = format!(
            "{}-{}.apps.googleusercontent.com",
            r.digits(12),
            r.string(32, b"abcdefghijklmnopqrstuvwxyz0123456789")
        );
        d.s(&format!(
            "{{\"web\":{{\"client_id\":\"{client}\",\"project_id\":\"demo\",\"auth_uri\":\"https://accounts.google.com/o/oauth2/auth\",\"client_secret\":\""
        ))
        .v(label, &v)
        .s("\",\"redirect_uris\":[\"http://localhost:8080/callback\"]}}");
    } else {
        put(
            r,
            d,
            "google_oauth_secret",
            positive,
            &["GOOGLE_CLIENT_SECRET", "client_secret", "oauth_secret"],
            &v,
        );
    }
}

fn azure_key_value(r: &mut Rng) -> String {
    format!("{}==", r.string(86, B64))
}

fn azure_storage_key(r: &mut Rng, d: &mut Doc, positive: bool) {
    let v = if positive {
        azure_key_value(r)
    } else {
        match r.below(3) {
            0 => format!("{}=", r.string(87, B64)),
            1 => format!("{}=", r.string(43, B64)),
            _ => "<storage-account-key>".to_owned(),
        }
    };
    let label = positive.then_some("azure_storage_key");
    match r.below(3) {
        0 => {
            d.s("AccountKey=").v(label, &v).s("\n");
        }
        1 => {
            d.s("export AZURE_STORAGE_KEY=").v(label, &v).s("\n");
        }
        _ => {
            d.s("{\"storage_account_key\": \"").v(label, &v).s("\"}");
        }
    }
}

fn azure_connection_string(r: &mut Rng, d: &mut Doc, positive: bool) {
    let account = format!("{}{}", r.pick(&COMPANIES), r.digits(3));
    let conn = if positive {
        if r.chance(70) {
            format!(
                "DefaultEndpointsProtocol=https;AccountName={account};AccountKey={};EndpointSuffix=core.windows.net",
                azure_key_value(r)
            )
        } else {
            format!(
                "Endpoint=sb://{account}.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={}=",
                r.string(43, B64)
            )
        }
    } else {
        match r.below(3) {
            0 => "UseDevelopmentStorage=true".to_owned(),
            1 => format!(
                "DefaultEndpointsProtocol=https;AccountName={account};AccountKey=<key>;EndpointSuffix=core.windows.net"
            ),
            _ => format!(
                "DefaultEndpointsProtocol=https;AccountName={account};EndpointSuffix=core.windows.net"
            ),
        }
    };
    let label = positive.then_some("azure_connection_string");
    match r.below(3) {
        0 => {
            d.s("AZURE_STORAGE_CONNECTION_STRING=\"")
                .v(label, &conn)
                .s("\"\n");
        }
        1 => {
            d.s("{\n  \"ConnectionStrings\": {\n    \"Storage\": \"")
                .v(label, &conn)
                .s("\"\n  }\n}");
        }
        _ => {
            d.s("Connection string: ")
                .v(label, &conn)
                .s("\n")
                .s(filler(r));
        }
    }
}

fn azure_client_secret(r: &mut Rng, d: &mut Doc, positive: bool) {
    let v = if positive {
        format!(
            "{}{}Q~{}",
            r.string(3, AZ_SECRET),
            r.range(0, 9),
            r.string(34, AZ_SECRET)
        )
    } else {
        match r.below(3) {
            0 => format!(
                "{}{}Q~{}",
                r.string(3, AZ_SECRET),
                r.range(0, 9),
                r.string(20, AZ_SECRET)
            ),
            1 => "xxx8Q~xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".to_owned(),
            _ => format!("{}Q~{}", r.string(4, UPPER), r.string(34, AZ_SECRET)),
        }
    };
    if r.chance(40) {
        let app = uuid(r);
        let tenant = uuid(r);
        d.s(&format!(
            "{{\n  \"appId\": \"{app}\",\n  \"displayName\": \"ci-deployer\",\n  \"password\": \""
        ))
        .v(positive.then_some("azure_client_secret"), &v)
        .s(&format!("\",\n  \"tenant\": \"{tenant}\"\n}}"));
    } else {
        put(
            r,
            d,
            "azure_client_secret",
            positive,
            &["AZURE_CLIENT_SECRET", "clientSecret", "client_secret"],
            &v,
        );
    }
}

fn uuid(r: &mut Rng) -> String {
    format!(
        "{}-{}-4{}-{}{}-{}",
        r.string(8, HEX),
        r.string(4, HEX),
        r.string(3, HEX),
        r.pick(&["8", "9", "a", "b"]),
        r.string(3, HEX),
        r.string(12, HEX)
    )
}

fn github(r: &mut Rng, d: &mut Doc, positive: bool) {
    const FIELDS: [&str; 4] = ["GITHUB_TOKEN", "GH_TOKEN", "github_token", "token"];
    let prefix = *r.pick(&["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]);
    let v = if positive {
        if r.chance(20) {
            format!("github_pat_{}_{}", r.string(22, ALNUM), r.string(59, ALNUM))
        } else {
            format!("{prefix}{}", r.string(36, ALNUM))
        }
    } else {
        match r.below(4) {
            0 => format!("{prefix}{}", r.string(35, ALNUM)),
            1 => format!("{}{}", prefix.to_uppercase(), r.string(36, ALNUM)),
            2 => "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".to_owned(),
            _ => format!("ghx_{}", r.string(36, ALNUM)),
        }
    };
    let label = positive.then_some("github_token");
    match r.below(4) {
        0 => {
            d.s("git clone https://")
                .v(label, &v)
                .s("@github.com/org/repo.git\n");
        }
        1 => {
            d.s("curl -H \"Authorization: token ")
                .v(label, &v)
                .s("\" https://api.github.com/user\n");
        }
        _ => put(r, d, "github_token", positive, &FIELDS, &v),
    }
}

fn gitlab(r: &mut Rng, d: &mut Doc, positive: bool) {
    let v = if positive {
        format!("glpat-{}", r.string(20, B64URL))
    } else {
        match r.below(3) {
            0 => format!("glpat-{}", r.string(12, B64URL)),
            1 => "glpat-xxxxxxxxxxxxxxxxxxxx".to_owned(),
            _ => "glpat-<your-token>".to_owned(),
        }
    };
    put(
        r,
        d,
        "gitlab_token",
        positive,
        &["GITLAB_TOKEN", "private_token", "CI_JOB_TOKEN"],
        &v,
    );
}

fn slack(r: &mut Rng, d: &mut Doc, positive: bool) {
    let v = if positive {
        if r.chance(60) {
            format!(
                "xoxb-{}-{}-{}",
                r.digits(12),
                r.digits(13),
                r.string(24, ALNUM)
            )
        } else {
            format!(
                "xoxp-{}-{}-{}-{}",
                r.digits(11),
                r.digits(11),
                r.digits(12),
                r.string(32, HEX)
            )
        }
    } else {
        match r.below(3) {
            0 => "xoxb-your-bot-token".to_owned(),
            1 => format!("xoxb-{}-{}", r.digits(3), r.digits(3)),
            _ => format!(
                "xoxz-{}-{}-{}",
                r.digits(12),
                r.digits(13),
                r.string(24, ALNUM)
            ),
        }
    };
    put(
        r,
        d,
        "slack_token",
        positive,
        &["SLACK_BOT_TOKEN", "slack_token", "token"],
        &v,
    );
}

fn slack_webhook(r: &mut Rng, d: &mut Doc, positive: bool) {
    let upper_digits = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let v = if positive {
        format!(
            "https://hooks.slack.com/services/T{}/B{}/{}",
            r.string_in(8, 10, upper_digits),
            r.string_in(8, 10, upper_digits),
            r.string(24, ALNUM)
        )
    } else {
        match r.below(3) {
            0 => "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
                .to_owned(),
            1 => "https://api.slack.com/messaging/webhooks".to_owned(),
            _ => format!(
                "https://hooks.slack.com/services/T{}/B{}/{}",
                r.digits(3),
                r.digits(3),
                r.string(8, ALNUM)
            ),
        }
    };
    put(
        r,
        d,
        "slack_webhook",
        positive,
        &["SLACK_WEBHOOK_URL", "webhook_url", "url"],
        &v,
    );
}

fn stripe(r: &mut Rng, d: &mut Doc, positive: bool) {
    let v = if positive {
        match r.below(5) {
            0 | 1 => format!("sk_live_{}", r.string_in(24, 99, ALNUM)),
            2 => format!("rk_live_{}", r.string_in(24, 99, ALNUM)),
            3 => format!("sk_test_{}", r.string_in(24, 99, ALNUM)),
            _ => format!("whsec_{}", r.string(32, ALNUM)),
        }
    } else {
        match r.below(4) {
            0 => format!("pk_live_{}", r.string_in(24, 99, ALNUM)),
            1 => format!("pk_test_{}", r.string_in(24, 99, ALNUM)),
            2 => format!("sk_live_{}", r.string(10, ALNUM)),
            _ => "sk_live_<your-secret-key>".to_owned(),
        }
    };
    if r.chance(30) {
        d.s("Stripe.api_key = \"")
            .v(positive.then_some("stripe_key"), &v)
            .s("\"\n");
    } else {
        put(
            r,
            d,
            "stripe_key",
            positive,
            &["STRIPE_SECRET_KEY", "stripe_key", "STRIPE_WEBHOOK_SECRET"],
            &v,
        );
    }
}

fn openai(r: &mut Rng, d: &mut Doc, positive: bool) {
    let v = if positive {
        match r.below(3) {
            0 => format!(
                "sk-proj-{}T3BlbkFJ{}",
                r.string_in(60, 80, B64URL),
                r.string_in(60, 80, B64URL)
            ),
            1 => format!("sk-{}T3BlbkFJ{}", r.string(20, ALNUM), r.string(20, ALNUM)),
            _ => format!("sk-svcacct-{}", r.string_in(100, 150, B64URL)),
        }
    } else {
        match r.below(3) {
            0 => format!("sk-{}", r.string(20, ALNUM)),
            1 => "sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".to_owned(),
            _ => format!("sk-proj-{}", r.string(10, B64URL)),
        }
    };
    put(
        r,
        d,
        "openai_key",
        positive,
        &["OPENAI_API_KEY", "openai_api_key", "api_key"],
        &v,
    );
}

fn anthropic(r: &mut Rng, d: &mut Doc, positive: bool) {
    let v = if positive {
        format!("sk-ant-api03-{}AA", r.string(93, B64URL))
    } else {
        match r.below(3) {
            0 => format!("sk-ant-{}", r.string(12, B64URL)),
            1 => "sk-ant-api03-XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX".to_owned(),
            _ => "sk-ant-<key>".to_owned(),
        }
    };
    if r.chance(30) {
        d.s("curl https://api.anthropic.com/v1/messages -H \"x-api-key: ")
            .v(positive.then_some("anthropic_key"), &v)
            .s("\"\n");
    } else {
        put(
            r,
            d,
            "anthropic_key",
            positive,
            &["ANTHROPIC_API_KEY", "anthropic_key"],
            &v,
        );
    }
}

fn npm(r: &mut Rng, d: &mut Doc, positive: bool) {
    let v = if positive {
        format!("npm_{}", r.string(36, ALNUM))
    } else {
        match r.below(3) {
            0 => format!("npm_{}", r.string(35, ALNUM)),
            1 => "npm_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX".to_owned(),
            _ => "npm_config_cache".to_owned(),
        }
    };
    if r.chance(40) {
        d.s("//registry.npmjs.org/:_authToken=")
            .v(positive.then_some("npm_token"), &v)
            .s("\n");
    } else {
        put(r, d, "npm_token", positive, &["NPM_TOKEN", "npm_token"], &v);
    }
}

fn pypi(r: &mut Rng, d: &mut Doc, positive: bool) {
    let v = if positive {
        format!("pypi-AgEIcHlwaS5vcmc{}", r.string_in(60, 180, B64URL))
    } else {
        match r.below(3) {
            0 => format!("pypi-{}", r.string(20, ALNUM)),
            1 => format!("pypi-AgEIcHlwaS5vcmc{}", r.string(10, B64URL)),
            _ => "pypi-<api-token>".to_owned(),
        }
    };
    if r.chance(40) {
        d.s("[pypi]\nusername = __token__\npassword = ")
            .v(positive.then_some("pypi_token"), &v)
            .s("\n");
    } else {
        put(
            r,
            d,
            "pypi_token",
            positive,
            &["TWINE_PASSWORD", "PYPI_TOKEN", "pypi_token"],
            &v,
        );
    }
}

fn sendgrid(r: &mut Rng, d: &mut Doc, positive: bool) {
    let v = if positive {
        format!("SG.{}.{}", r.string(22, B64URL), r.string(43, B64URL))
    } else {
        match r.below(3) {
            0 => format!("SG.{}.{}", r.string(10, B64URL), r.string(20, B64URL)),
            1 => "SG.xxxxxxxxxxxxxxxxxxxxxx.yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy".to_owned(),
            _ => "SG.<api-key>".to_owned(),
        }
    };
    put(
        r,
        d,
        "sendgrid_key",
        positive,
        &["SENDGRID_API_KEY", "sendgrid_key"],
        &v,
    );
}

fn twilio(r: &mut Rng, d: &mut Doc, positive: bool) {
    let v = if positive {
        format!("SK{}", r.string(32, HEX))
    } else {
        match r.below(3) {
            0 => format!("AC{}", r.string(32, HEX)),
            1 => format!("SK{}", r.string(31, HEX)),
            _ => format!("SK{}", r.string(32, UPPER)),
        }
    };
    let field = if !positive && v.starts_with("AC") {
        "TWILIO_ACCOUNT_SID"
    } else {
        "TWILIO_API_KEY"
    };
    let label = positive.then_some("twilio_key");
    embed(r, d, label, field, &v, &CRED_PROSE);
}

fn private_key(r: &mut Rng, d: &mut Doc, positive: bool) {
    let label = if positive {
        *r.pick(&[
            "RSA PRIVATE KEY",
            "PRIVATE KEY",
            "EC PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
            "PGP PRIVATE KEY BLOCK",
            "DSA PRIVATE KEY",
        ])
    } else {
        *r.pick(&[
            "PUBLIC KEY",
            "CERTIFICATE",
            "CERTIFICATE REQUEST",
            "RSA PRIVATE KEY",
            "PGP PUBLIC KEY BLOCK",
        ])
    };
    let escaped = r.chance(25);
    let nl = if escaped { "\\n" } else { "\n" };
    let placeholder = !positive && label == "RSA PRIVATE KEY";
    let mut block = format!("-----BEGIN {label}-----{nl}");
    if label.starts_with("PGP") {
        block.push_str(&format!("Version: GnuPG v2{nl}{nl}"));
    }
    if placeholder {
        block.push_str("...");
    } else {
        let lines = r.range(6, 25) as usize;
        block.push_str(&pem_body(r, lines, nl));
    }
    block.push_str(&format!("{nl}-----END {label}-----"));
    let tag = positive.then_some("private_key");
    if escaped {
        d.s("{\"name\": \"deploy\", \"key\": \"")
            .v(tag, &block)
            .s("\\n\"}");
    } else {
        match r.below(3) {
            0 => {
                d.s("Here is the key:\n\n")
                    .v(tag, &block)
                    .s("\n\n")
                    .s(filler(r));
            }
            1 => {
                d.s("```\n").v(tag, &block).s("\n```\n");
            }
            _ => {
                d.s("ssh_key: |\n").v(tag, &block).s("\n");
            }
        }
    }
}

fn b64url(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn jwt(r: &mut Rng, d: &mut Doc, positive: bool) {
    let alg = *r.pick(&["HS256", "RS256", "ES256", "PS384"]);
    let header = if r.chance(30) {
        format!(
            "{{\"alg\":\"{alg}\",\"kid\":\"{}\",\"typ\":\"JWT\"}}",
            r.string(8, HEX)
        )
    } else {
        format!("{{\"alg\":\"{alg}\",\"typ\":\"JWT\"}}")
    };
    let iat = 1_700_000_000 + r.range(0, 50_000_000);
    let payload = format!(
        "{{\"sub\":\"{}\",\"name\":\"{} {}\",\"iat\":{iat},\"exp\":{},\"scope\":\"read write\"}}",
        r.digits(10),
        r.pick(&FIRST),
        r.pick(&LAST),
        iat + 3600
    );
    let sig_len = if alg == "HS256" { 43 } else { 86 };
    let v = if positive {
        format!(
            "{}.{}.{}",
            b64url(&header),
            b64url(&payload),
            r.string(sig_len, B64URL)
        )
    } else {
        match r.below(4) {
            0 => format!("{}.{}", b64url(&header), b64url(&payload)),
            1 => format!(
                "{}.{}.{}",
                b64url("{\"typ\":\"JWT\"}"),
                b64url(&payload),
                r.string(sig_len, B64URL)
            ),
            2 => format!(
                "eyJ{}.{}.{}",
                r.string(20, B64URL),
                r.string(30, B64URL),
                r.string(20, B64URL)
            ),
            _ => format!(
                "{}.{}.{}",
                b64url(&header),
                r.string(40, B64URL),
                r.string(sig_len, B64URL)
            ),
        }
    };
    let tag = positive.then_some("jwt");
    match r.below(4) {
        0 => {
            d.s("Authorization: Bearer ").v(tag, &v).s("\n");
        }
        1 => {
            d.s("Set-Cookie: session=")
                .v(tag, &v)
                .s("; Path=/; HttpOnly\n");
        }
        _ => put(
            r,
            d,
            "jwt",
            positive,
            &["id_token", "access_token", "jwt"],
            &v,
        ),
    }
}

/// A value someone might use as a password or token.
fn secret_value(r: &mut Rng) -> String {
    const SYMBOLS: &[u8] = b"!@#$%^&*-_+=?";
    match r.below(6) {
        0 => r.string_in(16, 40, ALNUM),
        1 => {
            let n = r.range(18, 44) as usize;
            r.string(n, B64)
        }
        2 => {
            let n = *r.pick(&[32usize, 40, 64]);
            r.string(n, HEX)
        }
        3 => uuid(r),
        4 => {
            // A person-made password: a word, digits, a symbol.
            let w = capitalize_word(r.pick::<&str>(&[
                "summer", "falcon", "orange", "river", "galaxy", "copper", "harbor",
            ]));
            let s = char::from(*r.pick(SYMBOLS));
            let dd = r.string_in(3, 4, DIGITS);
            let tail = r.string_in(3, 5, ALNUM);
            format!("{w}{s}{dd}{tail}")
        }
        _ => {
            let mut a = String::new();
            for _ in 0..r.range(14, 24) {
                let set: &[u8] = if r.chance(20) { SYMBOLS } else { ALNUM };
                a.push(char::from(*r.pick(set)));
            }
            a
        }
    }
}

fn capitalize_word(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn generic(r: &mut Rng, d: &mut Doc, positive: bool) {
    const KEYS: [&str; 16] = [
        "password",
        "db_password",
        "api_key",
        "apiKey",
        "secret",
        "client_secret",
        "clientSecret",
        "access_token",
        "accessToken",
        "auth_token",
        "secret_key",
        "private_token",
        "passwd",
        "app_secret",
        "webhook_secret",
        "signing_key",
    ];
    // Generic near-misses are judged strictly: nothing may be reported.
    d.tolerated.clear();
    if positive {
        let key = *r.pick(&KEYS);
        let v = secret_value(r);
        let label = Some("generic_secret");
        match r.below(9) {
            0 => {
                d.s(&format!("--{} ", key.replace('_', "-")))
                    .v(label, &v)
                    .s("\n");
            }
            1 => {
                d.s("X-Api-Key: ").v(label, &v).s("\n");
            }
            2 => {
                // Bearer tokens use the b64token alphabet (RFC 6750).
                let token = match r.below(3) {
                    0 => r.string_in(20, 40, ALNUM),
                    1 => r.string_in(20, 44, B64),
                    _ => uuid(r),
                };
                d.s("Authorization: Bearer ").v(label, &token).s("\n");
            }
            3 => {
                // Query values are URL-safe (or percent-encoded).
                let token = if r.chance(50) {
                    r.string_in(16, 40, ALNUM)
                } else {
                    uuid(r)
                };
                d.s(&format!("https://api.example.net/v2/items?{key}="))
                    .v(label, &token)
                    .s("&page=2");
            }
            4 => {
                d.s(&format!("{key} = \"")).v(label, &v).s("\"\n");
            }
            _ => {
                let assign = format!("Your new {key}: ");
                let set = format!("please set {key}=");
                let prose = [(assign.as_str(), ""), (set.as_str(), " in the vault")];
                embed(r, d, label, key, &v, &prose);
            }
        }
        return;
    }
    let key = *r.pick(&KEYS);
    let near: String = match r.below(14) {
        0 => format!("{key}=<your-{}>", key.replace('_', "-")),
        1 => format!("{key}: xxxxxxxxxxxxxxxx"),
        2 => format!("{key}: changeme"),
        3 => format!("{}=${{{}}}", key.to_uppercase(), key.to_uppercase()),
        4 => format!("\"{key}\": \"****************\""),
        5 => format!("{key}: {{{{ .Values.{key} }}}}"),
        6 => format!("{key} = \"your_{key}_here\""),
        7 => format!(
            "\"{key}\": \"{}\"",
            r.pick(&["hunter2", "password1", "letmein"])
        ),
        8 => format!("{key} = os.environ[\"{}\"]", key.to_uppercase()),
        9 => format!(
            "\"token_type\": \"Bearer\", \"expires_in\": {}",
            r.range(600, 7200)
        ),
        10 => format!("password_min_length: {}", r.range(8, 16)),
        11 => format!(
            "\"tokenizer\": \"{}\"",
            r.pick(&["bert-base-uncased", "gpt2-medium-v2", "xlm-roberta-large"])
        ),
        12 => {
            "The password must contain at least 12 characters, one digit and one symbol.".to_owned()
        }
        _ => format!("{key}: correct horse battery staple"),
    };
    d.s(filler(r)).s("\n").s(&near).s("\n");
}
