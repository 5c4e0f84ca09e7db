"""The application layer: settings, job schemas, image intake, the analyze pipeline and actions."""
