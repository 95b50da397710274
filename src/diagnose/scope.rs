//! The report a diagnosis looks at, with the lookups its rules make for every IKE SA built
//! once. Scanning the whole report from each IKE SA made a diagnosis quadratic: 3.3 s for
//! 10,000 tunnels, and a live snapshot of them held up the capture loop long enough for
//! the kernel to drop most packets at 2 Gbit/s.

use std::collections::{HashMap, HashSet};

use crate::track::report::{EspSaReport, IkeSaReport, Report};

use super::rules::host;

/// A report and its indexes (see the module documentation).
pub(super) struct Scope<'a> {
    /// The report itself, for what the indexes do not cover.
    pub(super) report: &'a Report,
    /// The ESP SAs and then the AH SAs of each IKE SA (by its `spi_i`), in report order.
    children: HashMap<&'a str, Vec<&'a EspSaReport>>,
    /// The `spi_i` of every IKE SA that another IKE SA was rekeyed from.
    replaced: HashSet<&'a str>,
    /// Positions in `report.ike_sas` of the IKE SAs each host (address without port)
    /// initiated, ascending.
    initiated: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Scope<'a> {
    /// Indexes `report`: one pass over its IKE, ESP and AH SAs.
    pub(super) fn new(report: &'a Report) -> Self {
        let mut children: HashMap<&str, Vec<&EspSaReport>> = HashMap::new();
        for e in report.esp_sas.iter().chain(&report.ah_sas) {
            if let Some(ike) = e.ike_sa.as_deref() {
                children.entry(ike).or_default().push(e);
            }
        }
        let mut replaced = HashSet::new();
        let mut initiated: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, sa) in report.ike_sas.iter().enumerate() {
            if let Some(old) = sa.rekeyed_from.as_deref() {
                replaced.insert(old);
            }
            initiated.entry(host(&sa.initiator)).or_default().push(i);
        }
        Scope {
            report,
            children,
            replaced,
            initiated,
        }
    }

    /// The ESP and AH SAs that belong to `sa`.
    pub(super) fn children(&self, sa: &IkeSaReport) -> &[&'a EspSaReport] {
        self.children
            .get(sa.spi_i.as_str())
            .map_or(&[], Vec::as_slice)
    }

    /// `true` when another IKE SA was rekeyed from `sa`.
    pub(super) fn was_replaced(&self, sa: &IkeSaReport) -> bool {
        self.replaced.contains(sa.spi_i.as_str())
    }

    /// The IKE SAs that host `a` or host `b` initiated, in report order, each once.
    pub(super) fn initiated_by_either(
        &self,
        a: &str,
        b: &str,
    ) -> impl Iterator<Item = &'a IkeSaReport> + '_ {
        let of = |h: &str| self.initiated.get(h).map_or(&[][..], Vec::as_slice);
        let (xs, ys) = (of(a), if a == b { &[][..] } else { of(b) });
        let (mut i, mut j) = (0, 0);
        std::iter::from_fn(move || {
            let next = match (xs.get(i), ys.get(j)) {
                (Some(&x), Some(&y)) if x <= y => {
                    i += 1;
                    x
                }
                (_, Some(&y)) => {
                    j += 1;
                    y
                }
                (Some(&x), None) => {
                    i += 1;
                    x
                }
                (None, None) => return None,
            };
            Some(&self.report.ike_sas[next])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::report::IkeState;

    fn sa(spi: &str, initiator: &str, responder: &str) -> IkeSaReport {
        let mut sa = crate::diagnose::tests::sa(IkeState::Established);
        sa.spi_i = spi.to_string();
        sa.initiator = initiator.to_string();
        sa.responder = responder.to_string();
        sa
    }

    #[test]
    fn sas_initiated_by_either_host_come_in_report_order_once() {
        let report = Report {
            ike_sas: vec![
                sa("a", "10.0.0.1:500", "10.0.0.2:500"),
                sa("b", "10.0.0.3:500", "10.0.0.1:500"),
                sa("c", "10.0.0.2:4500", "10.0.0.1:4500"),
                sa("d", "10.0.0.1:500", "10.0.0.3:500"),
                sa("e", "[2001:db8::1]:500", "10.0.0.1:500"),
            ],
            ..Report::default()
        };
        let scope = Scope::new(&report);
        let spis = |a, b| {
            scope
                .initiated_by_either(a, b)
                .map(|s| s.spi_i.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(spis("10.0.0.1", "10.0.0.2"), ["a", "c", "d"]);
        assert_eq!(spis("10.0.0.2", "10.0.0.1"), ["a", "c", "d"]);
        assert_eq!(spis("10.0.0.1", "10.0.0.1"), ["a", "d"]);
        assert_eq!(spis("[2001:db8::1]", "10.0.0.9"), ["e"]);
        assert!(spis("10.0.0.9", "10.0.0.8").is_empty());
    }

    #[test]
    fn children_and_replacements_are_found_by_spi() {
        let mut report = Report::default();
        let mut new = sa("new", "10.0.0.1:500", "10.0.0.2:500");
        new.rekeyed_from = Some("old".to_string());
        report.ike_sas = vec![sa("old", "10.0.0.1:500", "10.0.0.2:500"), new];
        let esp = |spi: &str, ike: Option<&str>| EspSaReport {
            ike_sa: ike.map(str::to_string),
            ..crate::diagnose::tests::esp(spi, "10.0.0.1", "10.0.0.2", 1, 0.0, 0.0)
        };
        report.esp_sas = vec![esp("1", Some("old")), esp("2", None), esp("3", Some("new"))];
        report.ah_sas = vec![esp("4", Some("old"))];
        let scope = Scope::new(&report);
        let spis = |i: usize| {
            scope
                .children(&report.ike_sas[i])
                .iter()
                .map(|e| e.spi.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(spis(0), ["1", "4"]);
        assert_eq!(spis(1), ["3"]);
        assert!(scope.was_replaced(&report.ike_sas[0]));
        assert!(!scope.was_replaced(&report.ike_sas[1]));
    }
}
