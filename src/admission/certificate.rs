//! The webhook's serving certificate: made and renewed by the operator (a CA and a serving
//! certificate in a Secret, the CA kept in the webhook configurations' `caBundle`), or made by
//! cert-manager, whose Secret the operator only reads.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Utc};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

use super::{AdmissionError, Result};

/// When the serving certificate is renewed: this long before it expires.
pub const RENEW_BEFORE: Duration = Duration::days(30);
/// How long a serving certificate the operator makes is valid.
const SERVING_VALIDITY: Duration = Duration::days(365);
const CA_KEY: &str = "ca.crt";
const CERT_KEY: &str = "tls.crt";
const KEY_KEY: &str = "tls.key";

/// Who makes the certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Issuing {
    /// The operator: a CA and a serving certificate, renewed before they expire, the CA put in
    /// the webhook configurations.
    Operator,
    /// cert-manager, as the chart's Certificate asks: the operator reads its Secret.
    CertManager,
}

/// What the webhook serves with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    pub certificate: Vec<u8>,
    pub key: Vec<u8>,
    /// The CAs clients trust it by: the current one, and the one before during a renewal.
    pub ca_bundle: Vec<u8>,
}

/// Where the certificate is kept and for which names.
#[derive(Clone, Debug)]
pub struct Certificates {
    pub issuing: Issuing,
    pub namespace: String,
    pub secret: String,
    /// The webhook configurations (mutating and validating) whose `caBundle` the operator keeps.
    pub configuration: String,
    /// DNS names and IP addresses the serving certificate is for.
    pub hosts: Vec<String>,
}

impl Certificates {
    /// The certificate to serve now. The operator makes a missing one and renews one that
    /// expires within [`RENEW_BEFORE`]; replicas racing to do so settle on the first write.
    pub async fn current(&self, client: &Client) -> Result<Served> {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        let existing = secrets.get_opt(&self.secret).await?;
        if self.issuing == Issuing::CertManager {
            let secret = existing.ok_or_else(|| {
                AdmissionError::Certificate(format!(
                    "Secret {}/{} does not exist yet: cert-manager makes it from the chart's Certificate",
                    self.namespace, self.secret
                ))
            })?;
            return served(&secret);
        }
        if let Some(secret) = &existing
            && !renewal_due(secret, Utc::now())
        {
            return served(secret);
        }
        let previous_ca = existing.as_ref().and_then(|secret| text(secret, CA_KEY));
        let issued = issue(&self.hosts, previous_ca.as_deref(), Utc::now())?;
        let mut secret = issued.secret(&self.secret, &self.namespace);
        let written = match existing {
            None => secrets.create(&PostParams::default(), &secret).await,
            Some(old) => {
                // Replaced only over the version read: a replica that renewed first wins.
                secret.metadata.resource_version = old.metadata.resource_version;
                secrets.replace(&self.secret, &PostParams::default(), &secret).await
            }
        };
        match written {
            Ok(secret) => served(&secret),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let secret = secrets.get(&self.secret).await?;
                served(&secret)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Puts `ca_bundle` into every webhook of the two configurations, where it differs.
    pub async fn inject(&self, client: &Client, ca_bundle: &[u8]) -> Result<()> {
        let mutating = Api::<MutatingWebhookConfiguration>::all(client.clone());
        inject_into(&mutating, &self.configuration, ca_bundle, |c| {
            c.webhooks.iter_mut().flatten().map(|w| &mut w.client_config.ca_bundle).collect()
        })
        .await?;
        let validating = Api::<ValidatingWebhookConfiguration>::all(client.clone());
        inject_into(&validating, &self.configuration, ca_bundle, |c| {
            c.webhooks.iter_mut().flatten().map(|w| &mut w.client_config.ca_bundle).collect()
        })
        .await
    }
}

/// Sets every bundle `bundles` finds in the configuration `name` to `ca_bundle`, replacing the
/// configuration (over the version read) only if one differed.
async fn inject_into<K>(
    api: &Api<K>,
    name: &str,
    ca_bundle: &[u8],
    bundles: fn(&mut K) -> Vec<&mut Option<ByteString>>,
) -> Result<()>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    let Some(mut configuration) = api.get_opt(name).await? else { return Ok(()) };
    let mut changed = false;
    for bundle in bundles(&mut configuration) {
        if bundle.as_ref().map(|b| b.0.as_slice()) != Some(ca_bundle) {
            *bundle = Some(ByteString(ca_bundle.to_vec()));
            changed = true;
        }
    }
    if changed {
        api.replace(name, &PostParams::default(), &configuration).await?;
    }
    Ok(())
}

fn text(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

/// The serving pair and bundle a Secret holds.
fn served(secret: &Secret) -> Result<Served> {
    let field = |key: &str| {
        text(secret, key).map(String::into_bytes).ok_or_else(|| {
            AdmissionError::Certificate(format!(
                "Secret {} has no {key}",
                secret.metadata.name.clone().unwrap_or_default()
            ))
        })
    };
    Ok(Served { certificate: field(CERT_KEY)?, key: field(KEY_KEY)?, ca_bundle: field(CA_KEY)? })
}

/// Whether the operator must make the Secret's certificate anew: it lacks one, or the serving
/// certificate it holds cannot be read or expires within [`RENEW_BEFORE`] of `now`.
pub fn renewal_due(secret: &Secret, now: DateTime<Utc>) -> bool {
    let complete = [CA_KEY, KEY_KEY].iter().all(|key| text(secret, key).is_some());
    let expires = text(secret, CERT_KEY).and_then(|pem| not_after(pem.as_bytes()));
    !complete || expires.is_none_or(|at| at - now < RENEW_BEFORE)
}

/// When the first certificate of `pem` expires; none if there is none to read.
fn not_after(pem: &[u8]) -> Option<DateTime<Utc>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let certificate = pem.parse_x509().ok()?;
    DateTime::from_timestamp(certificate.validity().not_after.timestamp(), 0)
}

impl Served {
    /// When the serving certificate expires, if it reads.
    pub fn expires(&self) -> Option<DateTime<Utc>> {
        not_after(&self.certificate)
    }

    /// The Secret that keeps it.
    pub fn secret(&self, name: &str, namespace: &str) -> Secret {
        let data = BTreeMap::from([
            (CA_KEY.to_owned(), ByteString(self.ca_bundle.clone())),
            (CERT_KEY.to_owned(), ByteString(self.certificate.clone())),
            (KEY_KEY.to_owned(), ByteString(self.key.clone())),
        ]);
        Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                labels: Some(BTreeMap::from([(
                    crate::provision::labels::MANAGED_BY.to_owned(),
                    crate::FIELD_MANAGER.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".to_owned()),
            data: Some(data),
            ..Secret::default()
        }
    }
}

/// Makes a CA and a serving certificate for `hosts`, valid from `now` for a year. The bundle
/// keeps `previous_ca` beside the new CA, so that replicas still serving the old certificate
/// stay trusted until they reload.
pub fn issue(hosts: &[String], previous_ca: Option<&str>, now: DateTime<Utc>) -> Result<Served> {
    let failed = |error: rcgen::Error| AdmissionError::Certificate(error.to_string());
    let not_after = now + SERVING_VALIDITY;
    let day = |at: DateTime<Utc>| {
        let month = u8::try_from(at.month()).unwrap_or(1);
        let day = u8::try_from(at.day()).unwrap_or(1);
        rcgen::date_time_ymd(at.year(), month, day)
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    ca_params.distinguished_name.push(DnType::CommonName, "windflow-webhook-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = day(now - Duration::days(1));
    ca_params.not_after = day(not_after + Duration::days(1));
    let ca_key = KeyPair::generate().map_err(failed)?;
    let ca = ca_params.self_signed(&ca_key).map_err(failed)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::new(hosts.to_vec()).map_err(failed)?;
    params.distinguished_name.push(DnType::CommonName, hosts.first().map_or("windflow-webhook", String::as_str));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.not_before = day(now - Duration::days(1));
    params.not_after = day(not_after);
    let key = KeyPair::generate().map_err(failed)?;
    let certificate = params.signed_by(&key, &issuer).map_err(failed)?;

    let mut ca_bundle = ca.pem();
    if let Some(previous) = previous_ca {
        // Only the CA that signed the serving certificate until now: older ones are dropped.
        let first = previous.split_inclusive("-----END CERTIFICATE-----\n").next().unwrap_or_default();
        ca_bundle.push_str(first);
    }
    Ok(Served {
        certificate: certificate.pem().into_bytes(),
        key: key.serialize_pem().into_bytes(),
        ca_bundle: ca_bundle.into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_certificate_is_kept_until_a_month_before_it_expires() {
        let now = Utc::now();
        let hosts = vec!["windflow-webhook.windflow-system.svc".to_owned(), "127.0.0.1".to_owned()];
        let issued = issue(&hosts, None, now).expect("issued");
        let secret = issued.secret("windflow-webhook-tls", "windflow-system");
        assert!(!renewal_due(&secret, now));
        assert!(!renewal_due(&secret, now + Duration::days(300)));
        assert!(renewal_due(&secret, now + Duration::days(340)));
        // Incomplete Secrets, or ones whose certificate cannot be read, are made anew.
        let mut unreadable = secret.clone();
        unreadable.data.as_mut().expect("data").insert(CERT_KEY.to_owned(), ByteString(b"not a PEM".to_vec()));
        assert!(renewal_due(&unreadable, now));
        let mut partial = secret;
        partial.data.as_mut().expect("data").remove(KEY_KEY);
        assert!(renewal_due(&partial, now));
    }

    #[test]
    fn a_renewal_keeps_the_previous_ca_trusted() {
        let now = Utc::now();
        let hosts = vec!["127.0.0.1".to_owned()];
        let first = issue(&hosts, None, now).expect("first");
        let first_ca = String::from_utf8(first.ca_bundle.clone()).expect("pem");
        let second = issue(&hosts, Some(&first_ca), now).expect("second");
        let bundle = String::from_utf8(second.ca_bundle).expect("pem");
        assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(bundle.ends_with(&first_ca));
        // A third renewal drops the first CA.
        let third = issue(&hosts, Some(&bundle), now).expect("third");
        let third_bundle = String::from_utf8(third.ca_bundle).expect("pem");
        assert_eq!(third_bundle.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(!third_bundle.contains(first_ca.trim()));
    }
}
