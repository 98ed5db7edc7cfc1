//! Engagement captured during a show (product cards opened, links clicked, likes, grab
//! attempts), the running order's log of brands on air, and the lead-score weights of a room.
//! What reports and lead scores are computed from; the computation is `crate::report`.

use serde::{Deserialize, Serialize};

/// What a viewer did, counted per viewer (and product) by the room and written in batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngagementKind {
    /// A product card was opened on the viewer page.
    ProductView,
    /// A product's link was followed (dealers only see links).
    ProductClick,
    /// Likes sent (each like counts one).
    Like,
    /// A flash-sale grab was attempted (won or not).
    GrabAttempt,
}

impl EngagementKind {
    pub const ALL: [EngagementKind; 4] = [
        EngagementKind::ProductView,
        EngagementKind::ProductClick,
        EngagementKind::Like,
        EngagementKind::GrabAttempt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EngagementKind::ProductView => "product_view",
            EngagementKind::ProductClick => "product_click",
            EngagementKind::Like => "like",
            EngagementKind::GrabAttempt => "grab_attempt",
        }
    }

    pub fn parse(s: &str) -> Option<EngagementKind> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// `count` events of one kind by one viewer (on one product: its id, or the flash sale's for
/// a grab attempt, empty for likes), the first of them at `at_ms`. The room closes its open
/// counts at least every few seconds and at every brand switch, so a record never spans two
/// segments of the running order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngagementRecord {
    pub viewer_id: String,
    pub kind: EngagementKind,
    pub target: String,
    pub count: u32,
    pub at_ms: i64,
}

/// From `at_ms` on, `brand_id` was on air (`None`: no brand). Written at every brand switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramRecord {
    pub brand_id: Option<String>,
    pub at_ms: i64,
}

/// Points for one kind of activity: `points` each (per minute for watching), at most `cap`
/// in all for the kind.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ActivityWeight {
    pub points: f64,
    pub cap: f64,
}

const fn w(points: f64, cap: f64) -> ActivityWeight {
    ActivityWeight { points, cap }
}

/// How a room scores its leads (docs/reports.md explains the model). The defaults are the
/// documented ones; a host changes them per room with `SetLeadWeights`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeadWeights {
    pub registered: ActivityWeight,
    pub watch_minute: ActivityWeight,
    pub chat: ActivityWeight,
    pub like: ActivityWeight,
    pub product_view: ActivityWeight,
    pub product_click: ActivityWeight,
    pub draw_entry: ActivityWeight,
    pub grab_attempt: ActivityWeight,
    pub red_packet: ActivityWeight,
    pub application: ActivityWeight,
    pub order: ActivityWeight,
    /// An activity's points halve for every whole `half_life_hours` since it happened
    /// (0: no decay).
    pub half_life_hours: u32,
    /// A score of at least this is warm.
    pub warm_at: f64,
    /// A score of at least this is hot.
    pub hot_at: f64,
}

impl Default for LeadWeights {
    fn default() -> Self {
        LeadWeights {
            registered: w(10.0, 10.0),
            watch_minute: w(1.0, 60.0),
            chat: w(2.0, 20.0),
            like: w(1.0, 5.0),
            product_view: w(2.0, 20.0),
            product_click: w(5.0, 40.0),
            draw_entry: w(2.0, 6.0),
            grab_attempt: w(3.0, 15.0),
            red_packet: w(1.0, 3.0),
            application: w(15.0, 15.0),
            order: w(25.0, 75.0),
            half_life_hours: 168,
            warm_at: 30.0,
            hot_at: 60.0,
        }
    }
}

impl LeadWeights {
    /// Every activity with its name, in the order reports list them.
    pub fn activities(&self) -> [(&'static str, ActivityWeight); 11] {
        [
            ("registered", self.registered),
            ("watch_minute", self.watch_minute),
            ("chat", self.chat),
            ("like", self.like),
            ("product_view", self.product_view),
            ("product_click", self.product_click),
            ("draw_entry", self.draw_entry),
            ("grab_attempt", self.grab_attempt),
            ("red_packet", self.red_packet),
            ("application", self.application),
            ("order", self.order),
        ]
    }

    /// The weight of an activity by name, to change it.
    pub fn activity_mut(&mut self, name: &str) -> Option<&mut ActivityWeight> {
        Some(match name {
            "registered" => &mut self.registered,
            "watch_minute" => &mut self.watch_minute,
            "chat" => &mut self.chat,
            "like" => &mut self.like,
            "product_view" => &mut self.product_view,
            "product_click" => &mut self.product_click,
            "draw_entry" => &mut self.draw_entry,
            "grab_attempt" => &mut self.grab_attempt,
            "red_packet" => &mut self.red_packet,
            "application" => &mut self.application,
            "order" => &mut self.order,
            _ => return None,
        })
    }

    /// Why these weights cannot be used, if they cannot.
    pub fn problem(&self) -> Option<String> {
        for (name, a) in self.activities() {
            if !(a.points.is_finite() && a.points >= 0.0 && a.cap.is_finite() && a.cap >= 0.0) {
                return Some(format!(
                    "{name}: points and cap must be finite and not negative"
                ));
            }
        }
        if !(self.warm_at.is_finite() && self.hot_at.is_finite())
            || self.warm_at <= 0.0
            || self.hot_at < self.warm_at
        {
            return Some("thresholds: need 0 < warm_at <= hot_at".into());
        }
        None
    }
}
