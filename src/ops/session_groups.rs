//! Aggregation state of open sessions: every session is a group of shared
//! grouped accumulators.
//!
//! A push brings each open session a few rows (W3: ~7 of 10k rows over
//! ~500 sessions). Accumulators of its own per session cost a DataFusion
//! call per session per aggregate per push, whose fixed price dwarfs the
//! rows'. Here a push is one `update_batch` per aggregate, as in a window.
//!
//! The price is paid when sessions are read: DataFusion's grouped
//! accumulators only give state or values of all their groups at once
//! (`EmitTo::All`), so reading some sessions takes every group's state
//! out, evaluates the wanted ones in fresh accumulators and merges the
//! others back, renumbered ([`SessionGroups::rebuild`]). To bound that
//! pass, sessions are spread over generations of at most
//! [`GENERATION_SIZE`] groups (sessions opened around the same time, which
//! tend to close around the same time), and a read rebuilds only the
//! generations holding the sessions it reads.

use arrow::array::{ArrayRef, UInt32Array};
use foldhash::{HashMap, HashMapExt};

use super::gather::gather;
use super::grouped_aggregates::{Accumulators, AggregateInput, AggregateSpec};
use crate::err;
use crate::error::Result;

/// Most groups (sessions, live or closed since the last rebuild) in one generation.
pub const GENERATION_SIZE: usize = 4096;

/// Marks a group whose session is gone.
const DEAD: u64 = u64::MAX;

/// Where a session's state is: generation and group index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GroupRef {
    generation: usize,
    index: usize,
}

struct Generation {
    accumulators: Accumulators,
    /// Session id of each group (`DEAD` once the session is gone).
    members: Vec<u64>,
    live: usize,
}

/// What a read wants of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Its values; the session closes (its state is dropped).
    Close,
    /// Its values; the session stays open.
    Peek,
    /// Its intermediate state (a checkpoint); the session stays open.
    State,
}

/// Grouped accumulators of every open session (see the module docs).
pub struct SessionGroups {
    spec: AggregateSpec,
    generations: Vec<Option<Generation>>,
    /// Generation that new sessions join.
    current: Option<usize>,
    groups: HashMap<u64, GroupRef>,
}

impl SessionGroups {
    /// No sessions.
    pub fn new(spec: &AggregateSpec) -> Self {
        Self {
            spec: spec.clone(),
            generations: Vec::new(),
            current: None,
            groups: HashMap::new(),
        }
    }

    /// Approximate memory held, in bytes.
    pub fn size(&self) -> usize {
        self.generations
            .iter()
            .flatten()
            .map(|g| g.accumulators.size() + g.members.capacity() * 8)
            .sum::<usize>()
            + self.groups.capacity() * 24
    }

    /// Gives session `id` a group with nothing in it yet.
    pub fn open(&mut self, id: u64) -> Result<()> {
        let current = match self.current {
            Some(g) if self.generation(g)?.members.len() < GENERATION_SIZE => g,
            _ => {
                let fresh = Generation {
                    accumulators: Accumulators::try_new(&self.spec)?,
                    members: Vec::new(),
                    live: 0,
                };
                let slot = match self.generations.iter().position(Option::is_none) {
                    Some(slot) => {
                        self.generations[slot] = Some(fresh);
                        slot
                    }
                    None => {
                        self.generations.push(Some(fresh));
                        self.generations.len() - 1
                    }
                };
                self.current = Some(slot);
                slot
            }
        };
        let generation = self.generation_mut(current)?;
        generation.members.push(id);
        generation.live += 1;
        let index = generation.members.len() - 1;
        self.groups.insert(
            id,
            GroupRef {
                generation: current,
                index,
            },
        );
        Ok(())
    }

    /// Forgets session `id` (closed without a read, or merged away after
    /// its state was moved).
    pub fn forget(&mut self, id: u64) -> Result<()> {
        let Some(group) = self.groups.remove(&id) else {
            return Ok(());
        };
        let generation = self.generation_mut(group.generation)?;
        generation.members[group.index] = DEAD;
        generation.live -= 1;
        if generation.live == 0 && self.current != Some(group.generation) {
            self.generations[group.generation] = None;
        }
        Ok(())
    }

    /// Adds rows of `input` (`rows` of them) to sessions: `(session id,
    /// its rows)` pairs. Each session's rows go in the order they came.
    pub fn update<'a>(
        &mut self,
        input: &AggregateInput,
        rows: usize,
        sessions: impl Iterator<Item = (u64, &'a [u32])>,
    ) -> Result<()> {
        // Each row's group, and the generations the batch touches.
        let mut row_groups: Vec<Option<GroupRef>> = vec![None; rows];
        let mut generations: Vec<usize> = Vec::new();
        for (id, session_rows) in sessions {
            let group = self.group(id)?;
            if !generations.contains(&group.generation) {
                generations.push(group.generation);
            }
            for &row in session_rows {
                row_groups[row as usize] = Some(group);
            }
        }
        if let ([generation], true) = (
            generations.as_slice(),
            row_groups.iter().all(Option::is_some),
        ) {
            // Every row to one generation (the usual case): no copy.
            let indices: Vec<usize> = row_groups.iter().flatten().map(|g| g.index).collect();
            let generation = self.generation_mut(*generation)?;
            let total = generation.members.len();
            return generation.accumulators.update(input, &indices, total);
        }
        for generation in generations {
            let (order, indices): (Vec<u32>, Vec<usize>) = row_groups
                .iter()
                .enumerate()
                .filter_map(|(row, g)| match g {
                    Some(g) if g.generation == generation => Some((row as u32, g.index)),
                    _ => None,
                })
                .unzip();
            let taken = input.regroup(&UInt32Array::from(order))?;
            let generation = self.generation_mut(generation)?;
            let total = generation.members.len();
            generation.accumulators.update(&taken, &indices, total)?;
        }
        Ok(())
    }

    /// Moves session `from`'s state into session `into` (`from` merged
    /// into `into`) and forgets `from`.
    pub fn merge(&mut self, from: u64, into: u64) -> Result<()> {
        let source = self.group(from)?;
        let target = self.group(into)?;
        if source.generation == target.generation {
            self.rebuild(source.generation, &[], Read::Peek, Some((from, into)))?;
            return Ok(());
        }
        let states = self.rebuild(source.generation, &[from], Read::State, None)?;
        self.forget(from)?;
        let target = self.group(into)?;
        let generation = self.generation_mut(target.generation)?;
        let total = generation.members.len();
        generation
            .accumulators
            .merge_state(&states.states, &[target.index], total)
    }

    /// Reads sessions `ids`, all the same way: their values (one column
    /// per aggregate) for `Close` and `Peek`, their states (per aggregate,
    /// its state columns) for `State`, in the order of `ids`. Closed
    /// sessions are forgotten.
    pub fn read(&mut self, ids: &[u64], kind: Read) -> Result<Rebuilt> {
        // Sessions by generation (usually one), and where each answer will be.
        let mut generations: Vec<(usize, Vec<u64>)> = Vec::new();
        let mut order = Vec::with_capacity(ids.len());
        for &id in ids {
            let generation = self.group(id)?.generation;
            let slot = match generations.iter().position(|(g, _)| *g == generation) {
                Some(slot) => slot,
                None => {
                    generations.push((generation, Vec::new()));
                    generations.len() - 1
                }
            };
            order.push((slot, generations[slot].1.len()));
            generations[slot].1.push(id);
        }
        let mut parts = Vec::with_capacity(generations.len());
        for (generation, list) in &generations {
            parts.push(self.rebuild(*generation, list, kind, None)?);
        }
        if parts.len() == 1 {
            return Ok(parts.remove(0));
        }
        // Answers from several generations, put back in the order asked.
        let values: Vec<Vec<ArrayRef>> = parts.iter().map(|p| p.values.clone()).collect();
        let states = match parts.first() {
            Some(first) if !first.states.is_empty() => (0..first.states.len())
                .map(|aggregate| {
                    let columns: Vec<Vec<ArrayRef>> =
                        parts.iter().map(|p| p.states[aggregate].clone()).collect();
                    gather_columns(&columns, &order)
                })
                .collect::<Result<_>>()?,
            _ => Vec::new(),
        };
        Ok(Rebuilt {
            values: if kind == Read::State {
                Vec::new()
            } else {
                gather_columns(&values, &order)?
            },
            states,
        })
    }

    /// Puts sessions back from a checkpoint: `ids[i]` with state row `i`.
    pub fn restore(&mut self, ids: &[u64], states: &[Vec<ArrayRef>]) -> Result<()> {
        *self = Self::new(&self.spec);
        for &id in ids {
            self.open(id)?;
        }
        for (generation, chunk) in ids.chunks(GENERATION_SIZE).enumerate() {
            let offset = generation * GENERATION_SIZE;
            let rows: Vec<Vec<ArrayRef>> = states
                .iter()
                .map(|columns| {
                    columns
                        .iter()
                        .map(|c| c.slice(offset, chunk.len()))
                        .collect()
                })
                .collect();
            let indices: Vec<usize> = (0..chunk.len()).collect();
            let generation = self.generation_mut(generation)?;
            generation
                .accumulators
                .merge_state(&rows, &indices, chunk.len())?;
        }
        Ok(())
    }

    /// Rebuilds one generation: every group's state is taken out; the
    /// sessions `ids` are read (`kind`); the live ones (all but closed
    /// ones) are merged back, renumbered in order, with `merge`
    /// `(from, into)` folding one session into another on the way.
    fn rebuild(
        &mut self,
        generation: usize,
        ids: &[u64],
        kind: Read,
        merge: Option<(u64, u64)>,
    ) -> Result<Rebuilt> {
        // Fresh accumulators to evaluate the sessions read in.
        let mut fresh = if kind != Read::State && !ids.is_empty() {
            Some(Accumulators::try_new(&self.spec)?)
        } else {
            None
        };
        let read_rows: Vec<u32> = ids
            .iter()
            .map(|&id| self.group(id).map(|g| g.index as u32))
            .collect::<Result<_>>()?;
        let folded = merge
            .map(|(from, into)| Ok::<_, crate::error::RiffleError>((self.group(from)?.index, into)))
            .transpose()?;
        let gen = self.generation_mut(generation)?;
        let states = gen.accumulators.take_state()?;
        let members = std::mem::take(&mut gen.members);
        // Every group has state once updated (updates size the
        // accumulators to all groups); rebuilding earlier is a bug.
        let rows = states.iter().flatten().next().map_or(0, |c| c.len());
        if rows != members.len() && !states.iter().all(Vec::is_empty) {
            return Err(err!(
                Internal,
                "session generation has {rows} states for {} groups",
                members.len()
            ));
        }
        let mut gone = vec![false; members.len()];
        if kind == Read::Close {
            for &row in &read_rows {
                gone[row as usize] = true;
            }
        }
        if let Some((from, _)) = folded {
            gone[from] = true;
        }
        // Live groups merged back in their old order (a merged-away
        // session's state goes to the session it joined).
        let mut kept_rows = Vec::with_capacity(members.len());
        let mut kept_targets = Vec::with_capacity(members.len());
        let mut new_members = Vec::with_capacity(members.len());
        let mut moved = Vec::new();
        for (old, &id) in members.iter().enumerate() {
            if id == DEAD || gone[old] {
                continue;
            }
            if old != new_members.len() {
                moved.push((id, new_members.len()));
            }
            kept_rows.push(old as u32);
            kept_targets.push(new_members.len());
            new_members.push(id);
        }
        if let Some((from, into)) = folded {
            let target = new_members
                .iter()
                .position(|&id| id == into)
                .ok_or_else(|| err!(Internal, "merge target {into} not open"))?;
            kept_rows.push(from as u32);
            kept_targets.push(target);
        }
        let pick = |rows: &[u32]| -> Result<Vec<Vec<ArrayRef>>> {
            let indices = UInt32Array::from(rows.to_vec());
            states
                .iter()
                .map(|columns| {
                    columns
                        .iter()
                        .map(|c| gather(c, &indices))
                        .collect::<Result<Vec<_>>>()
                })
                .collect()
        };
        let mut rebuilt = Rebuilt {
            values: Vec::new(),
            states: Vec::new(),
        };
        if !read_rows.is_empty() {
            match fresh.as_mut() {
                None => rebuilt.states = pick(&read_rows)?,
                Some(fresh) => {
                    let targets: Vec<usize> = (0..read_rows.len()).collect();
                    fresh.merge_state(&pick(&read_rows)?, &targets, read_rows.len())?;
                    rebuilt.values = fresh.evaluate()?;
                }
            }
        }
        let gen = self.generation_mut(generation)?;
        gen.accumulators
            .merge_state(&pick(&kept_rows)?, &kept_targets, new_members.len())?;
        gen.live = new_members.len();
        gen.members = new_members;
        let empty = gen.live == 0 && self.current != Some(generation);
        for (id, index) in moved {
            self.groups.insert(id, GroupRef { generation, index });
        }
        // Closed and merged-away sessions are gone with their groups.
        for (old, &id) in members.iter().enumerate() {
            if gone[old] {
                self.groups.remove(&id);
            }
        }
        if empty {
            self.generations[generation] = None;
        }
        Ok(rebuilt)
    }

    fn group(&self, id: u64) -> Result<GroupRef> {
        self.groups
            .get(&id)
            .copied()
            .ok_or_else(|| err!(Internal, "session {id} has no group"))
    }

    fn generation(&self, generation: usize) -> Result<&Generation> {
        self.generations
            .get(generation)
            .and_then(Option::as_ref)
            .ok_or_else(|| err!(Internal, "session generation {generation} is gone"))
    }

    fn generation_mut(&mut self, generation: usize) -> Result<&mut Generation> {
        self.generations
            .get_mut(generation)
            .and_then(Option::as_mut)
            .ok_or_else(|| err!(Internal, "session generation {generation} is gone"))
    }
}

/// What a read gives.
pub struct Rebuilt {
    /// Values of the sessions read, one column per aggregate (`Close`, `Peek`).
    pub values: Vec<ArrayRef>,
    /// States of the sessions read, per aggregate (`State`).
    pub states: Vec<Vec<ArrayRef>>,
}

/// Columns gathered from parts (each a list of columns of equal length):
/// `order[i] = (part, row)` gives row `i`.
fn gather_columns(parts: &[Vec<ArrayRef>], order: &[(usize, usize)]) -> Result<Vec<ArrayRef>> {
    let Some(first) = parts.first() else {
        return Ok(Vec::new());
    };
    (0..first.len())
        .map(|column| {
            let arrays: Vec<&dyn arrow::array::Array> =
                parts.iter().map(|p| p[column].as_ref()).collect();
            Ok(arrow::compute::interleave(&arrays, order)?)
        })
        .collect()
}
