"""Where decisions, rewards and learned statistics live: SQLite on the pod's volume, or Redis shared by replicas."""
