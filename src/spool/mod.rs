//! (spool: being built; see ARCHITECTURE.md.)
