//! UI translations: one catalog per language in `web/i18n/<lang>.txt`
//! (`key = text` lines, `#` comments), embedded (`assets`) and parsed
//! once. A key missing from a catalog falls back to English, then to the
//! key itself; a test checks that every key the templates and handlers use
//! exists in every catalog, and that every UI language has a catalog.

use std::collections::HashMap;
use std::sync::OnceLock;

fn parse(text: &'static str) -> HashMap<&'static str, &'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

fn catalogs() -> &'static HashMap<&'static str, HashMap<&'static str, &'static str>> {
    static C: OnceLock<HashMap<&'static str, HashMap<&'static str, &'static str>>> = OnceLock::new();
    C.get_or_init(|| super::assets::bundled_in("i18n").filter_map(|(file, text)| Some((file.strip_suffix(".txt")?, parse(text)))).collect())
}

/// The text of `key` in `lang`.
pub(crate) fn t(lang: &str, key: &str) -> String {
    let c = catalogs();
    c.get(lang)
        .and_then(|m| m.get(key))
        .or_else(|| c.get("en").and_then(|m| m.get(key)))
        .map_or_else(|| key.to_owned(), |s| (*s).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys named in templates (`t("…")`) and in Rust sources (`t(lang, "…")`).
    fn used_keys() -> Vec<String> {
        let mut keys = Vec::new();
        let mut scan = |src: &str, open: &str| {
            for part in src.split(open).skip(1) {
                // `t("status." ~ x)`: a prefix, checked by the dynamic-key test.
                if let Some(end) = part.find('"')
                    && !part[..end].ends_with('.')
                {
                    keys.push(part[..end].to_owned());
                }
            }
        };
        for (_, src) in super::super::assets::bundled_in("templates") {
            scan(src, "t(\"");
        }
        for src in [
            include_str!("pages.rs"),
            include_str!("mod.rs"),
            include_str!("api.rs"),
            include_str!("insights.rs"),
            include_str!("settings_page.rs"),
        ] {
            scan(src, "t(lang, \"");
            scan(src, "t(&lang, \"");
        }
        keys.sort();
        keys.dedup();
        keys
    }

    #[test]
    fn every_used_key_is_translated_in_every_language() {
        let keys = used_keys();
        assert!(keys.len() > 50, "found only {} keys: the scan is broken", keys.len());
        for lang in crate::web::LANGUAGES {
            let m = &catalogs()[lang];
            let missing: Vec<_> = keys.iter().filter(|k| !m.contains_key(k.as_str())).collect();
            assert!(missing.is_empty(), "{lang} lacks {missing:?}");
        }
    }

    #[test]
    fn dynamic_keys_exist() {
        for s in ["sent", "bounced", "expired", "pending", "deferred", "probe"] {
            assert_ne!(t("de", &format!("status.{s}")), format!("status.{s}"));
        }
        for k in ["dir.inbound", "dir.outbound", "lang.en", "lang.de", "peer.off", "peer.consume", "peer.share"] {
            assert_ne!(t("de", k), k);
        }
        for p in ["24h", "7d", "30d", "90d", "all", "custom"] {
            assert_ne!(t("de", &format!("range.{p}")), format!("range.{p}"));
        }
        // Every check id of DESIGN.md and every status has a name.
        for id in crate::check::IDS
            .iter()
            .map(|i| format!("health.id.{i}"))
            .chain(["pass", "warn", "fail", "skipped"].map(|s| format!("health.st.{s}")))
        {
            assert_ne!(t("de", &id), id);
            assert_ne!(t("en", &id), id);
        }
        for k in crate::insights::Kind::ALL {
            for p in ["ins.kind.", "ins.advice."] {
                let key = format!("{p}{}", k.id());
                assert_ne!(t("de", &key), key);
                assert_ne!(t("en", &key), key);
            }
        }
        let fields = serde_json::to_value(crate::insights::InsightConfig::default()).unwrap();
        for f in fields.as_object().unwrap().keys().filter(|k| *k != "dnsbls" && *k != "dns_server" && *k != "inactivity_min_before") {
            let key = format!("ins.set.{f}");
            assert_ne!(t("de", &key), key);
        }
        for ty in ["slack_webhook", "slack_bot", "webhook", "smtp", "sendmail"] {
            let key = format!("notify.t.{ty}");
            assert_ne!(t("de", &key), key);
        }
        for k in ["ins.cat.deliverability", "ins.cat.security", "ins.cat.activity", "ins.cat.info", "ins.sev.info", "ins.sev.warning"]
            .into_iter()
            .chain(["ins.sev.critical", "ins.status.open", "ins.status.archived", "ins.status.snoozed"])
        {
            assert_ne!(t("de", k), k);
        }
    }

    #[test]
    fn catalogs_have_the_same_keys() {
        let mut langs: Vec<_> = catalogs().keys().copied().collect();
        langs.sort_unstable();
        let mut want = crate::web::LANGUAGES.to_vec();
        want.sort_unstable();
        assert_eq!(langs, want, "one catalog per UI language");
        let en: std::collections::BTreeSet<_> = catalogs()["en"].keys().collect();
        for lang in crate::web::LANGUAGES {
            let other: std::collections::BTreeSet<_> = catalogs()[lang].keys().collect();
            assert_eq!(en, other, "{lang}");
        }
    }

    #[test]
    fn fallback_is_english_then_the_key() {
        assert_eq!(t("xx", "nav.dashboard"), t("en", "nav.dashboard"));
        assert_eq!(t("de", "no.such.key"), "no.such.key");
    }
}
