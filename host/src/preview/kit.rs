//! Stage's UI kit, `@/components/ui/*`: small React + Tailwind implementations of the
//! common shadcn/ui components (same names and props for the common cases), written in TSX
//! under `kit/` and compiled once at start by the same compiler as apps.

use std::collections::BTreeMap;

use stage_compile::{Jsx, Policy, compile};

/// The kit's components, by the name an app imports (`@/components/ui/<name>`).
pub const NAMES: [&str; 14] = [
    "alert",
    "badge",
    "button",
    "card",
    "checkbox",
    "input",
    "label",
    "progress",
    "separator",
    "skeleton",
    "switch",
    "table",
    "tabs",
    "textarea",
];

const SOURCES: [(&str, &str); 14] = [
    ("alert", include_str!("kit/alert.tsx")),
    ("badge", include_str!("kit/badge.tsx")),
    ("button", include_str!("kit/button.tsx")),
    ("card", include_str!("kit/card.tsx")),
    ("checkbox", include_str!("kit/checkbox.tsx")),
    ("input", include_str!("kit/input.tsx")),
    ("label", include_str!("kit/label.tsx")),
    ("progress", include_str!("kit/progress.tsx")),
    ("separator", include_str!("kit/separator.tsx")),
    ("skeleton", include_str!("kit/skeleton.tsx")),
    ("switch", include_str!("kit/switch.tsx")),
    ("table", include_str!("kit/table.tsx")),
    ("tabs", include_str!("kit/tabs.tsx")),
    ("textarea", include_str!("kit/textarea.tsx")),
];

/// One compiled kit module.
#[derive(Debug, Clone)]
pub struct KitModule {
    pub hash: String,
    pub code: String,
}

/// Compiles the kit; its components import only React, each on its own.
pub fn compile_kit() -> anyhow::Result<BTreeMap<&'static str, KitModule>> {
    let policy = Policy {
        externals: vec!["react".into()],
        jsx: Some(Jsx { import_source: "react".into() }),
        ..Policy::default()
    };
    let mut kit = BTreeMap::new();
    for (name, source) in SOURCES {
        let path = format!("/kit/{name}.tsx");
        let files = BTreeMap::from([(path.clone(), source)]);
        let compiled = compile(&files, &path, &policy);
        if let Some(report) = compiled.report(&files) {
            anyhow::bail!("the UI kit does not compile: {report}");
        }
        let module = compiled.modules.into_iter().next().expect("a clean compilation has its entry");
        kit.insert(name, KitModule { hash: module.hash, code: module.code });
    }
    Ok(kit)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_component_compiles() {
        let kit = super::compile_kit().unwrap();
        assert_eq!(kit.keys().copied().collect::<Vec<_>>(), super::NAMES);
        assert!(kit["card"].code.contains("export const CardContent"), "{}", kit["card"].code);
    }
}
