//! The referral tree: who invited whom at every depth, with the orders of each person, of the
//! people they invited directly and of their whole subtree; and the invite ranking.

use super::{ReportClock, Show, ShowLog};
use foldhash::{HashMap, HashMapExt};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralNode {
    pub viewer_id: String,
    pub name: String,
    pub company: String,
    pub channel: Option<String>,
    /// 0 for a root (invited by nobody the room knows).
    pub depth: u32,
    /// The person's own orders.
    pub own_orders: u32,
    pub own_value_cents: i64,
    pub direct_invitees: u32,
    /// Orders of the people they invited directly.
    pub direct_orders: u32,
    pub direct_value_cents: i64,
    /// Everyone below them, at any depth.
    pub subtree_size: u32,
    pub subtree_orders: u32,
    pub subtree_value_cents: i64,
    /// Invitees, by viewer id.
    pub children: Vec<ReferralNode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankEntry {
    pub viewer_id: String,
    pub name: String,
    pub direct_invitees: u32,
    pub subtree_size: u32,
    pub subtree_orders: u32,
    pub subtree_value_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralTree {
    /// People invited by nobody the room knows who invited someone, by viewer id.
    pub roots: Vec<ReferralNode>,
    /// Inviters by direct invitees, then subtree size, then subtree value.
    pub ranking: Vec<RankEntry>,
}

/// Figures of one person before the tree is nested.
#[derive(Default, Clone)]
struct Flat {
    depth: u32,
    own: (u32, i64),
    direct: (u32, i64, u32),
    subtree: (u32, i64, u32),
}

pub fn referral_tree(log: &ShowLog, clock: ReportClock) -> ReferralTree {
    let show = Show::new(log, clock);
    // Inviters: a registration's, else the first the audience log names (tokens minted by a
    // host's backend carry it).
    let mut inviter: BTreeMap<&str, &str> = BTreeMap::new();
    for r in show.registrations() {
        if let Some(i) = r.inviter_id.as_deref().filter(|i| *i != r.viewer_id) {
            inviter.insert(&r.viewer_id, i);
        }
    }
    for a in &log.audience {
        if let Some(i) = a.inviter_id.as_deref().filter(|i| *i != a.viewer_id) {
            inviter.entry(&a.viewer_id).or_insert(i);
        }
    }
    let mut children: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (&v, &i) in &inviter {
        children.entry(i).or_default().insert(v);
    }
    let mut own: HashMap<&str, (u32, i64)> = HashMap::new();
    for o in &show.orders {
        let e = own.entry(&o.viewer_id).or_default();
        e.0 += 1;
        e.1 += o.total_cents;
    }
    // Roots first; whatever a cycle leaves unreached starts at its smallest id.
    let mut roots: Vec<&str> = children
        .keys()
        .copied()
        .filter(|v| !inviter.contains_key(v))
        .collect();
    let mut flat: HashMap<&str, Flat> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    let mut start = 0;
    loop {
        for &root in &roots[start..] {
            if flat.contains_key(root) {
                continue;
            }
            // Breadth first: `order` lists parents before their children.
            flat.insert(root, Flat::default());
            let mut queue = std::collections::VecDeque::from([(root, 0u32)]);
            while let Some((v, depth)) = queue.pop_front() {
                order.push(v);
                for &c in children.get(v).into_iter().flatten() {
                    if !flat.contains_key(c) {
                        flat.insert(
                            c,
                            Flat {
                                depth: depth + 1,
                                ..Flat::default()
                            },
                        );
                        queue.push_back((c, depth + 1));
                    }
                }
            }
        }
        start = roots.len();
        match children.keys().find(|v| !flat.contains_key(*v)) {
            Some(v) => roots.push(*v),
            None => break,
        }
    }
    // Children after their parents, so sums go up in one backward pass.
    for &v in order.iter().rev() {
        let mut f = flat[v].clone();
        f.own = own.get(v).copied().unwrap_or_default();
        for &c in children.get(v).into_iter().flatten() {
            let Some(cf) = flat.get(c).filter(|cf| cf.depth == f.depth + 1) else {
                continue;
            };
            f.direct.0 += cf.own.0;
            f.direct.1 += cf.own.1;
            f.direct.2 += 1;
            f.subtree.0 += cf.own.0 + cf.subtree.0;
            f.subtree.1 += cf.own.1 + cf.subtree.1;
            f.subtree.2 += 1 + cf.subtree.2;
        }
        flat.insert(v, f);
    }
    let names: HashMap<&str, (&str, &str, Option<&str>)> = show
        .registrations()
        .map(|r| {
            (
                r.viewer_id.as_str(),
                (r.name.as_str(), r.company.as_str(), r.channel.as_deref()),
            )
        })
        .collect();
    let node = |v: &str, children: Vec<ReferralNode>| {
        let f = &flat[v];
        let (name, company, channel) = names.get(v).copied().unwrap_or(("", "", None));
        ReferralNode {
            viewer_id: v.to_string(),
            name: name.to_string(),
            company: company.to_string(),
            channel: channel.map(String::from),
            depth: f.depth,
            own_orders: f.own.0,
            own_value_cents: f.own.1,
            direct_invitees: f.direct.2,
            direct_orders: f.direct.0,
            direct_value_cents: f.direct.1,
            subtree_size: f.subtree.2,
            subtree_orders: f.subtree.0,
            subtree_value_cents: f.subtree.1,
            children,
        }
    };
    // Nested bottom-up, without recursion (a chain of invitations may be long).
    let mut built: HashMap<&str, ReferralNode> = HashMap::new();
    for &v in order.iter().rev() {
        let depth = flat[v].depth;
        let kids = children
            .get(v)
            .into_iter()
            .flatten()
            .filter(|c| flat.get(*c).is_some_and(|cf| cf.depth == depth + 1))
            .filter_map(|c| built.remove(c))
            .collect();
        built.insert(v, node(v, kids));
    }
    let mut ranking: Vec<RankEntry> = order
        .iter()
        .map(|v| (v, &flat[v]))
        .filter(|(_, f)| f.direct.2 > 0)
        .map(|(v, f)| RankEntry {
            viewer_id: v.to_string(),
            name: names.get(v).map_or("", |n| n.0).to_string(),
            direct_invitees: f.direct.2,
            subtree_size: f.subtree.2,
            subtree_orders: f.subtree.0,
            subtree_value_cents: f.subtree.1,
        })
        .collect();
    ranking.sort_by(|a, b| {
        (b.direct_invitees, b.subtree_size, b.subtree_value_cents)
            .cmp(&(a.direct_invitees, a.subtree_size, a.subtree_value_cents))
            .then_with(|| a.viewer_id.cmp(&b.viewer_id))
    });
    let mut roots: Vec<ReferralNode> = roots.iter().filter_map(|r| built.remove(r)).collect();
    roots.sort_by(|a, b| a.viewer_id.cmp(&b.viewer_id));
    ReferralTree { roots, ranking }
}
