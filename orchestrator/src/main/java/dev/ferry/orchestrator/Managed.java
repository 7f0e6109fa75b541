package dev.ferry.orchestrator;

/** A part of the daemon with a lifetime: started in dependency order, stopped in reverse. */
public interface Managed {
    void start() throws Exception;

    void stop();
}
