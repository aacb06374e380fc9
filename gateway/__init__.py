"""CampusGate: campus access control and IoT gateway for epidemic prevention."""
