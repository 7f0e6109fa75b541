package dev.ferry.orchestrator.migration;

import java.util.Locale;

/** Which end of a migration this daemon is. */
public enum Role {
    SOURCE, DESTINATION;

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
