// The local lakehouse package: see lakehouse/README in docs/lakehouse.md (issue #3).
export {};
