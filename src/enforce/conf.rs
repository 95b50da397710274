//! A tree of sections, key/values and lists: the one shape of strongSwan's configuration.
//!
//! The renderer builds one [`Section`] tree; it is written out as `swanctl.conf` text
//! ([`Section::to_conf`]) and sent to charon as VICI messages (`vici`), so the file a user
//! reads and the configuration `apply` loads cannot disagree.

use std::fmt::{self, Write};

/// One element of a section.
#[derive(Clone, PartialEq, Eq)]
pub enum Item {
    /// `key = value`.
    Value {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// A secret: written to the file, never shown by `Debug`.
        secret: bool,
    },
    /// `key = a, b, c`; a list in VICI.
    List {
        /// The key.
        key: String,
        /// The values in order.
        values: Vec<String>,
    },
    /// A nested section.
    Section(Section),
    /// A `#` comment line in the file; not part of the configuration.
    Comment(String),
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Value { key, secret, .. } if *secret => write!(f, "{key} = (hidden)"),
            Item::Value { key, value, .. } => write!(f, "{key} = {value:?}"),
            Item::List { key, values } => write!(f, "{key} = {values:?}"),
            Item::Section(s) => s.fmt(f),
            Item::Comment(c) => write!(f, "# {c}"),
        }
    }
}

/// A named section (`name { ... }`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// The section's name.
    pub name: String,
    /// Its elements in order.
    pub items: Vec<Item>,
}

impl Section {
    /// An empty section.
    pub fn new(name: impl Into<String>) -> Section {
        Section {
            name: name.into(),
            items: Vec::new(),
        }
    }

    /// Adds `key = value`.
    pub fn value(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.items.push(Item::Value {
            key: key.into(),
            value: value.into(),
            secret: false,
        });
        self
    }

    /// Adds a secret `key = "value"`.
    pub fn secret(&mut self, key: &str, value: &str) -> &mut Self {
        self.items.push(Item::Value {
            key: key.into(),
            value: value.into(),
            secret: true,
        });
        self
    }

    /// Adds a list.
    pub fn list(&mut self, key: &str, values: Vec<String>) -> &mut Self {
        self.items.push(Item::List {
            key: key.into(),
            values,
        });
        self
    }

    /// Adds a comment line.
    pub fn comment(&mut self, text: impl Into<String>) -> &mut Self {
        self.items.push(Item::Comment(text.into()));
        self
    }

    /// Adds a subsection.
    pub fn section(&mut self, s: Section) -> &mut Self {
        self.items.push(Item::Section(s));
        self
    }

    /// The subsections, in order.
    pub fn sections(&self) -> impl Iterator<Item = &Section> {
        self.items.iter().filter_map(|i| match i {
            Item::Section(s) => Some(s),
            _ => None,
        })
    }

    /// The subsection called `name`.
    pub fn get(&self, name: &str) -> Option<&Section> {
        self.sections().find(|s| s.name == name)
    }

    /// The value of `key` in this section (not in subsections).
    pub fn get_value(&self, key: &str) -> Option<&str> {
        self.items.iter().find_map(|i| match i {
            Item::Value { key: k, value, .. } if k == key => Some(value.as_str()),
            _ => None,
        })
    }

    /// The values of list `key` in this section.
    pub fn get_list(&self, key: &str) -> Option<&[String]> {
        self.items.iter().find_map(|i| match i {
            Item::List { key: k, values } if k == key => Some(values.as_slice()),
            _ => None,
        })
    }

    /// The section's contents as strongSwan's configuration syntax, indented by `depth`
    /// tabs; the section's own name and braces are not written (see [`Section::to_conf`]).
    pub fn body_to_conf(&self, depth: usize, out: &mut String) {
        let pad = "    ".repeat(depth);
        for item in &self.items {
            match item {
                Item::Value { key, value, secret } => {
                    let v = if *secret { quoted(value) } else { bare(value) };
                    let _ = writeln!(out, "{pad}{key} = {v}");
                }
                Item::List { key, values } => {
                    let vs: Vec<String> = values.iter().map(|v| bare(v)).collect();
                    let _ = writeln!(out, "{pad}{key} = {}", vs.join(", "));
                }
                Item::Comment(c) => {
                    let _ = writeln!(out, "{pad}# {c}");
                }
                Item::Section(s) => s.write_conf(depth, out),
            }
        }
    }

    fn write_conf(&self, depth: usize, out: &mut String) {
        let pad = "    ".repeat(depth);
        let _ = writeln!(out, "{pad}{} {{", self.name);
        self.body_to_conf(depth + 1, out);
        let _ = writeln!(out, "{pad}}}");
    }

    /// The section as text, `name { ... }`, one setting per line (strongSwan's parser has
    /// no separator other than the newline).
    pub fn to_conf(&self) -> String {
        let mut out = String::new();
        self.write_conf(0, &mut out);
        out
    }
}

/// Whether a value can stand unquoted in strongSwan's configuration syntax.
fn is_bare(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:/%@-[]!|+".contains(c))
}

fn bare(v: &str) -> String {
    if is_bare(v) {
        v.to_string()
    } else {
        quoted(v)
    }
}

/// A double-quoted string with `"` and `\` escaped.
pub fn quoted(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_sections_render_one_setting_per_line() {
        let mut child = Section::new("child");
        child.value("mode", "tunnel").list(
            "esp_proposals",
            vec!["aes128-sha256".into(), "3des-sha1".into()],
        );
        let mut top = Section::new("connections");
        top.comment("a note").section(child);
        assert_eq!(
            top.to_conf(),
            "connections {\n    # a note\n    child {\n        mode = tunnel\n        \
             esp_proposals = aes128-sha256, 3des-sha1\n    }\n}\n"
        );
    }

    #[test]
    fn values_with_spaces_and_secrets_are_quoted_and_escaped() {
        let mut s = Section::new("s");
        s.value("id", "CN=Lab CA").secret("secret", r#"a"b\c"#);
        assert_eq!(
            s.to_conf(),
            "s {\n    id = \"CN=Lab CA\"\n    secret = \"a\\\"b\\\\c\"\n}\n"
        );
        assert_eq!(format!("{:?}", s.items[1]), "secret = (hidden)");
    }

    #[test]
    fn lookups_find_values_lists_and_sections() {
        let mut s = Section::new("s");
        s.value("a", "1")
            .list("l", vec!["x".into()])
            .section(Section::new("sub"));
        assert_eq!(s.get_value("a"), Some("1"));
        assert_eq!(s.get_list("l"), Some(&["x".to_string()][..]));
        assert_eq!(s.get("sub").map(|x| x.name.as_str()), Some("sub"));
        assert_eq!(s.get("none"), None);
    }
}
