//! The controller: worker registry, routing and HTTP APIs. Built out by the controller issue.
