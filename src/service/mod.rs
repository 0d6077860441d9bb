//! (service: being built; see ARCHITECTURE.md.)
