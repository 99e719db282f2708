//! JSON shapes of the client protocol (SPEC §4). Field names, order and types are MIKO's; the
//! fields marked "ours" are additive.

use serde::{Deserialize, Serialize};

/// Request of `getAvailableReleases` / `getLatestRelease`, as a client sends it. The server reads
/// requests leniently (flags may also be JSON booleans, unknown keys are ignored); this type is
/// what a well-behaved client writes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CheckRequest {
    #[cfg_attr(feature = "openapi", schema(example = "4.0.4.11"))]
    #[serde(rename = "INSTALLED_VERSION", default)]
    pub installed_version: String,
    #[cfg_attr(feature = "openapi", schema(example = "PT40_UT_CRM3"))]
    #[serde(rename = "TYPE")]
    pub distribution: String,
    /// Empty for a non-1C product: the request then omits `CONF` and matches only `*` entries.
    #[cfg_attr(feature = "openapi", schema(example = "УправлениеТорговлей"))]
    #[serde(rename = "CONF", default, skip_serializing_if = "String::is_empty")]
    pub conf: String,
    /// Empty when `CONF` is: omitted then.
    #[cfg_attr(feature = "openapi", schema(example = "11.5.8.233"))]
    #[serde(
        rename = "CONF_VERSION",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub conf_version: String,
    #[cfg_attr(feature = "openapi", schema(example = "ACME-0001"))]
    #[serde(rename = "KEY", default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[cfg_attr(feature = "openapi", schema(example = "N"))]
    #[serde(rename = "SHOW_UNTESTED", default = "flag_no")]
    pub show_untested: String,
    #[cfg_attr(feature = "openapi", schema(example = "N"))]
    #[serde(rename = "COUNT_DOWNLOADS", default = "flag_no")]
    pub count_downloads: String,
}

fn flag_no() -> String {
    "N".to_owned()
}

/// Answer of `getAvailableReleases` and `getLatestRelease`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReleasesResponse {
    pub modules: Vec<Module>,
    pub result: String,
    /// Ours: when the server made the answer (RFC 3339 UTC), inside the signed bytes, so the age
    /// of a kept answer (an offline bundle) can be judged without trusting file times.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server_time: String,
}

/// One release offered to a client.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Module {
    pub release_id: i64,
    /// The release version.
    pub uniqid: String,
    /// The distribution's vendor label.
    pub version: String,
    pub developer: String,
    pub min_1c_version: String,
    pub lic_product_id: i64,
    pub lic_feature_id: i64,
    #[cfg_attr(feature = "openapi", schema(example = "CRM для Управления торговлей"))]
    pub name: String,
    pub description: String,
    pub promo_link: String,
    #[cfg_attr(feature = "openapi", schema(example = "* Исправлена печать счёта"))]
    pub changelog: String,
    /// Size of the main file.
    pub size: u64,
    /// Link to the main file; `""` when not downloadable.
    pub download_link: String,
    pub files: Vec<ModuleFile>,
    /// Ours: RFC 3339 UTC.
    #[serde(default)]
    pub published_at: String,
    /// Ours.
    #[serde(default)]
    pub prerelease: bool,
    /// Ours: shown only because the client asked `SHOW_UNTESTED=Y`.
    #[serde(default)]
    pub untested: bool,
    /// Ours.
    #[serde(default = "yes")]
    pub downloadable: bool,
    /// Ours: why the release is not downloadable, `""` when it is.
    #[serde(default)]
    pub result: String,
    /// Ours: the distribution code (`TYPE`) the release belongs to, so a client can check the
    /// answer is about what it asked.
    #[serde(default)]
    pub distribution: String,
    /// Ours: the distribution's version scheme, `1c` or `semver` (SPEC §3), so a client need
    /// not be told how to compare versions.
    #[serde(default)]
    pub version_scheme: String,
    /// Ours: the release's whole compatibility list, so a client can say what a release that
    /// does not fit its configuration requires, and an offline installer can check the fit.
    #[serde(default)]
    pub compatibility: Vec<Compatibility>,
}

fn yes() -> bool {
    true
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ModuleFile {
    pub name: String,
    pub size: u64,
    /// `""` when not downloadable.
    pub url: String,
    pub md5: String,
    /// Ours.
    #[serde(default)]
    pub sha256: String,
}

/// Every error of the client protocol family.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientError {
    pub error: String,
}

/// Answer of `getModuleInfo`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModuleInfoResponse {
    pub module: ModuleInfo,
    pub result: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModuleInfo {
    pub code: String,
    pub name: String,
    pub description: String,
    pub developer: String,
    pub promo_link: String,
    pub lic_product_id: i64,
    pub lic_feature_id: i64,
    pub releases: Vec<ModuleInfoRelease>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModuleInfoRelease {
    pub release_id: i64,
    pub version: String,
    pub published_at: String,
    pub changelog: String,
    pub size: u64,
    pub downloads: u64,
    pub compatibility: Vec<Compatibility>,
    /// Ours.
    #[serde(default)]
    pub prerelease: bool,
}

/// One compatibility entry of a release: a configuration and its version range.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Compatibility {
    /// A configuration name, or `*` for any.
    #[cfg_attr(feature = "openapi", schema(example = "УправлениеТорговлей"))]
    pub conf: String,
    #[cfg_attr(feature = "openapi", schema(example = "11.4.11.55"))]
    pub min_1c_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_1c_version: Option<String>,
}

/// Answer of `getExtensionHash`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExtensionHashResponse {
    pub hash: String,
    pub result: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_serializes_in_miko_field_order() {
        let m = Module {
            release_id: 1139,
            uniqid: "4.0.4.11".into(),
            ..Default::default()
        };
        let json = serde_json::to_string(&m).unwrap();
        let keys = [
            "release_id",
            "uniqid",
            "version",
            "developer",
            "min_1c_version",
            "lic_product_id",
            "lic_feature_id",
            "name",
            "description",
            "promo_link",
            "changelog",
            "size",
            "download_link",
            "files",
            "published_at",
        ];
        let mut last = 0;
        for key in keys {
            let at = json.find(&format!("\"{key}\":")).unwrap();
            assert!(at >= last, "{key} out of order in {json}");
            last = at;
        }
    }

    #[test]
    fn reads_miko_answer_without_our_fields() {
        let miko = r#"{"modules":[{"release_id":1139,"uniqid":"4.0.4.11","version":"MIKO","developer":"MIKO",
          "min_1c_version":"2.5.8.191","lic_product_id":85,"lic_feature_id":43,"name":"n","description":"d",
          "promo_link":"p","changelog":"c","size":17355331,"download_link":"l",
          "files":[{"name":"PT40.ZIP","size":865976,"url":"u","md5":"027ade8b556dd66ab1c3a60d4a53be90"}]}],"result":""}"#;
        let r: ReleasesResponse = serde_json::from_str(miko).unwrap();
        assert_eq!(r.modules[0].files[0].size, 865976);
        assert!(r.modules[0].downloadable);
    }
}
