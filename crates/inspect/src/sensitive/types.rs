//! The types of sensitive data, and what finding one means for a session: its
//! category (`pii`, `pci`, `credentials`, `classified`, or a dictionary's own)
//! and its confidentiality label (`internal`, `confidential`,
//! `highly_confidential`, the names of the label lattice in `zt4ai-core`).

/// The level a document classification marking names.
///
/// Markings from different schemes (government classification, corporate
/// labels, the FIRST Traffic Light Protocol) are kept apart so that a reader
/// sees which one was written, and each maps onto the label lattice
/// `public < internal < confidential < highly_confidential` by what it asks
/// of the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Marking {
    /// `TOP SECRET`.
    TopSecret,
    /// `SECRET` (as a banner, e.g. `SECRET//NOFORN`).
    Secret,
    /// `STRICTLY CONFIDENTIAL`, `HIGHLY CONFIDENTIAL`.
    StrictlyConfidential,
    /// `CONFIDENTIAL`, `COMPANY CONFIDENTIAL`.
    Confidential,
    /// `RESTRICTED`.
    Restricted,
    /// `CUI`, `CONTROLLED UNCLASSIFIED INFORMATION`.
    Cui,
    /// `FOR OFFICIAL USE ONLY`, `FOUO`.
    OfficialUseOnly,
    /// `INTERNAL USE ONLY`, `FOR INTERNAL USE ONLY`, `INTERNAL ONLY`.
    InternalUseOnly,
    /// `TLP:RED`.
    TlpRed,
    /// `TLP:AMBER`, `TLP:AMBER+STRICT`.
    TlpAmber,
    /// `TLP:GREEN`.
    TlpGreen,
}

impl Marking {
    /// Every marking level.
    pub const ALL: [Marking; 11] = [
        Marking::TopSecret,
        Marking::Secret,
        Marking::StrictlyConfidential,
        Marking::Confidential,
        Marking::Restricted,
        Marking::Cui,
        Marking::OfficialUseOnly,
        Marking::InternalUseOnly,
        Marking::TlpRed,
        Marking::TlpAmber,
        Marking::TlpGreen,
    ];

    /// The finding kind for this marking (`classification_top_secret`, …).
    pub fn name(self) -> &'static str {
        match self {
            Marking::TopSecret => "classification_top_secret",
            Marking::Secret => "classification_secret",
            Marking::StrictlyConfidential => "classification_strictly_confidential",
            Marking::Confidential => "classification_confidential",
            Marking::Restricted => "classification_restricted",
            Marking::Cui => "classification_cui",
            Marking::OfficialUseOnly => "classification_official_use_only",
            Marking::InternalUseOnly => "classification_internal_use_only",
            Marking::TlpRed => "classification_tlp_red",
            Marking::TlpAmber => "classification_tlp_amber",
            Marking::TlpGreen => "classification_tlp_green",
        }
    }

    /// The label the marking asks for.
    ///
    /// National-security classifications and "strictly confidential" are the
    /// top of the lattice; "confidential", "restricted", CUI and TLP:AMBER
    /// (limited disclosure, need to know) are `confidential`; markings that
    /// only keep a text inside the organisation or community (FOUO, internal
    /// use only, TLP:GREEN) are `internal`.
    pub fn label(self) -> &'static str {
        match self {
            Marking::TopSecret
            | Marking::Secret
            | Marking::StrictlyConfidential
            | Marking::TlpRed => "highly_confidential",
            Marking::Confidential | Marking::Restricted | Marking::Cui | Marking::TlpAmber => {
                "confidential"
            }
            Marking::OfficialUseOnly | Marking::InternalUseOnly | Marking::TlpGreen => "internal",
        }
    }
}

/// A type of sensitive data the scanner reports.
///
/// [`SensitiveType::name`] is the string a [`crate::Finding`] carries in
/// [`crate::FindingKind::Sensitive`]; [`classify`] maps it back to the
/// category and label, so that the pipeline can raise a session's label from
/// a finding without knowing the detectors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SensitiveType {
    /// An e-mail address.
    Email,
    /// A telephone number (international or common national formats).
    Phone,
    /// A payment card number (Luhn-valid, known issuer prefix and length).
    PaymentCard,
    /// An International Bank Account Number (ISO 13616, mod-97 checked).
    Iban,
    /// A US Social Security number.
    UsSsn,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// An AWS access key id (`AKIA…`, `ASIA…`).
    AwsAccessKey,
    /// An AWS secret access key (40 characters next to an AWS key name).
    AwsSecretKey,
    /// A Google Cloud API key (`AIza…`).
    GcpApiKey,
    /// A Google Cloud service-account key file (JSON with a private key).
    GcpServiceAccount,
    /// A Google OAuth client secret (`GOCSPX-…`).
    GoogleOauthSecret,
    /// An Azure storage account key (`AccountKey=…`, 88 characters).
    AzureStorageKey,
    /// An Azure connection string carrying a key.
    AzureConnectionString,
    /// A Microsoft Entra ID (Azure AD) application client secret.
    AzureClientSecret,
    /// A GitHub token (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`).
    GithubToken,
    /// A GitLab personal access token (`glpat-…`).
    GitlabToken,
    /// A Slack token (`xoxb-`, `xoxp-`, …).
    SlackToken,
    /// A Slack incoming-webhook URL.
    SlackWebhook,
    /// A Stripe secret or restricted key, or webhook signing secret.
    StripeKey,
    /// An OpenAI API key (`sk-proj-…`, `sk-…`).
    OpenaiKey,
    /// An Anthropic API key (`sk-ant-…`).
    AnthropicKey,
    /// An npm access token (`npm_…`).
    NpmToken,
    /// A PyPI upload token (`pypi-AgEIcHlwaS5vcmc…`).
    PypiToken,
    /// A SendGrid API key (`SG.….…`).
    SendgridKey,
    /// A Twilio API key (`SK` + 32 hex digits).
    TwilioKey,
    /// A PEM or OpenSSH or PGP private key block.
    PrivateKey,
    /// A JSON Web Token.
    Jwt,
    /// A high-entropy value assigned to a key-like name (`password`, `token`, …).
    GenericSecret,
    /// A document classification marking.
    Classification(Marking),
    /// A term from a custom dictionary.
    Custom {
        /// The dictionary's name, the finding kind.
        name: String,
        /// The dictionary's category.
        category: String,
    },
}

/// The built-in types other than classification markings, in the order they
/// are documented.
pub(crate) const BUILTIN: [SensitiveType; 28] = [
    SensitiveType::Email,
    SensitiveType::Phone,
    SensitiveType::PaymentCard,
    SensitiveType::Iban,
    SensitiveType::UsSsn,
    SensitiveType::IpAddress,
    SensitiveType::AwsAccessKey,
    SensitiveType::AwsSecretKey,
    SensitiveType::GcpApiKey,
    SensitiveType::GcpServiceAccount,
    SensitiveType::GoogleOauthSecret,
    SensitiveType::AzureStorageKey,
    SensitiveType::AzureConnectionString,
    SensitiveType::AzureClientSecret,
    SensitiveType::GithubToken,
    SensitiveType::GitlabToken,
    SensitiveType::SlackToken,
    SensitiveType::SlackWebhook,
    SensitiveType::StripeKey,
    SensitiveType::OpenaiKey,
    SensitiveType::AnthropicKey,
    SensitiveType::NpmToken,
    SensitiveType::PypiToken,
    SensitiveType::SendgridKey,
    SensitiveType::TwilioKey,
    SensitiveType::PrivateKey,
    SensitiveType::Jwt,
    SensitiveType::GenericSecret,
];

impl SensitiveType {
    /// Every built-in type: the detector types, then one per marking level.
    pub fn builtins() -> impl Iterator<Item = SensitiveType> {
        BUILTIN
            .iter()
            .cloned()
            .chain(Marking::ALL.into_iter().map(SensitiveType::Classification))
    }

    /// The built-in type with this finding kind, if there is one.
    pub fn from_name(kind: &str) -> Option<SensitiveType> {
        SensitiveType::builtins().find(|t| t.name() == kind)
    }

    /// The finding kind: a snake_case name (`email`, `aws_access_key`, …, or
    /// the dictionary's name).
    pub fn name(&self) -> &str {
        match self {
            SensitiveType::Custom { name, .. } => name,
            builtin => builtin.static_name(),
        }
    }

    /// The category: `pii`, `pci`, `credentials`, `classified`, or the
    /// dictionary's category.
    pub fn category(&self) -> &str {
        match self {
            SensitiveType::Custom { category, .. } => category,
            builtin => builtin.static_category(),
        }
    }

    /// The confidentiality label a text holding this data has at least.
    ///
    /// Anything that grants access (credentials, private keys, tokens) and
    /// data whose leak enables fraud or identity theft (payment cards, SSNs)
    /// is `highly_confidential`; contact data, IP addresses and IBANs (which
    /// are shared to be paid) are `confidential`; a marking names its own
    /// level; a dictionary term is `confidential`.
    pub fn label(&self) -> &'static str {
        match self {
            SensitiveType::Email
            | SensitiveType::Phone
            | SensitiveType::Iban
            | SensitiveType::IpAddress
            | SensitiveType::Custom { .. } => "confidential",
            SensitiveType::Classification(marking) => marking.label(),
            _ => "highly_confidential",
        }
    }

    /// The name of a built-in type (`""` for a dictionary type, which is
    /// answered by [`SensitiveType::name`]).
    fn static_name(&self) -> &'static str {
        match self {
            SensitiveType::Email => "email",
            SensitiveType::Phone => "phone",
            SensitiveType::PaymentCard => "payment_card",
            SensitiveType::Iban => "iban",
            SensitiveType::UsSsn => "us_ssn",
            SensitiveType::IpAddress => "ip_address",
            SensitiveType::AwsAccessKey => "aws_access_key",
            SensitiveType::AwsSecretKey => "aws_secret_key",
            SensitiveType::GcpApiKey => "gcp_api_key",
            SensitiveType::GcpServiceAccount => "gcp_service_account",
            SensitiveType::GoogleOauthSecret => "google_oauth_secret",
            SensitiveType::AzureStorageKey => "azure_storage_key",
            SensitiveType::AzureConnectionString => "azure_connection_string",
            SensitiveType::AzureClientSecret => "azure_client_secret",
            SensitiveType::GithubToken => "github_token",
            SensitiveType::GitlabToken => "gitlab_token",
            SensitiveType::SlackToken => "slack_token",
            SensitiveType::SlackWebhook => "slack_webhook",
            SensitiveType::StripeKey => "stripe_key",
            SensitiveType::OpenaiKey => "openai_key",
            SensitiveType::AnthropicKey => "anthropic_key",
            SensitiveType::NpmToken => "npm_token",
            SensitiveType::PypiToken => "pypi_token",
            SensitiveType::SendgridKey => "sendgrid_key",
            SensitiveType::TwilioKey => "twilio_key",
            SensitiveType::PrivateKey => "private_key",
            SensitiveType::Jwt => "jwt",
            SensitiveType::GenericSecret => "generic_secret",
            SensitiveType::Classification(marking) => marking.name(),
            SensitiveType::Custom { .. } => "",
        }
    }

    /// The category of a built-in type (`""` for a dictionary type).
    fn static_category(&self) -> &'static str {
        match self {
            SensitiveType::Email
            | SensitiveType::Phone
            | SensitiveType::Iban
            | SensitiveType::UsSsn
            | SensitiveType::IpAddress => "pii",
            SensitiveType::PaymentCard => "pci",
            SensitiveType::Classification(_) => "classified",
            SensitiveType::Custom { .. } => "",
            _ => "credentials",
        }
    }

    /// Which of two overlapping findings is kept: the higher rank wins. A
    /// finding that contains others as parts (a key file, a connection
    /// string, a private key block) outranks them; a format with a checksum or
    /// a documented prefix outranks a guess from context.
    pub(crate) fn rank(&self) -> u8 {
        match self {
            SensitiveType::PrivateKey
            | SensitiveType::GcpServiceAccount
            | SensitiveType::AzureConnectionString => 100,
            SensitiveType::AwsSecretKey | SensitiveType::AzureStorageKey => 80,
            SensitiveType::Iban | SensitiveType::PaymentCard => 70,
            SensitiveType::UsSsn | SensitiveType::Email => 60,
            SensitiveType::Phone | SensitiveType::IpAddress => 50,
            SensitiveType::GenericSecret => 40,
            SensitiveType::Classification(_) => 30,
            SensitiveType::Custom { .. } => 20,
            _ => 90,
        }
    }
}

/// The category and label of a built-in finding kind, or `None` for a kind
/// that is not built in (a dictionary's: ask [`super::SensitiveScanner::classify`]).
pub fn classify(kind: &str) -> Option<(&'static str, &'static str)> {
    let ty = SensitiveType::from_name(kind)?;
    Some((ty.static_category(), ty.label()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_name_is_unique_snake_case_and_round_trips() {
        let names: Vec<String> = SensitiveType::builtins()
            .map(|t| t.name().to_owned())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        for name in &names {
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
            let ty = SensitiveType::from_name(name).unwrap();
            assert_eq!(ty.name(), name);
        }
    }

    #[test]
    fn classify_maps_kinds_to_category_and_label() {
        assert_eq!(classify("email"), Some(("pii", "confidential")));
        assert_eq!(
            classify("payment_card"),
            Some(("pci", "highly_confidential"))
        );
        assert_eq!(classify("us_ssn"), Some(("pii", "highly_confidential")));
        assert_eq!(
            classify("aws_access_key"),
            Some(("credentials", "highly_confidential"))
        );
        assert_eq!(
            classify("classification_top_secret"),
            Some(("classified", "highly_confidential"))
        );
        assert_eq!(
            classify("classification_internal_use_only"),
            Some(("classified", "internal"))
        );
        assert_eq!(classify("customer_name"), None);
        assert_eq!(classify(""), None);
    }

    #[test]
    fn custom_types_carry_their_dictionary_category() {
        let ty = SensitiveType::Custom {
            name: "customer_name".into(),
            category: "customer".into(),
        };
        assert_eq!(ty.name(), "customer_name");
        assert_eq!(ty.category(), "customer");
        assert_eq!(ty.label(), "confidential");
    }
}
