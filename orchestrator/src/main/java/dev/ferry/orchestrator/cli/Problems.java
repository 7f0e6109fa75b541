package dev.ferry.orchestrator.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import dev.ferry.orchestrator.api.Json;
import java.net.ConnectException;
import java.net.UnknownHostException;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpTimeoutException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * A failure as a sentence for the person at the terminal: what went wrong in their terms ("connection
 * refused", "no such file"), never an exception's class name or stack trace, which say more about the
 * client's insides than about what to fix.
 */
public final class Problems {
    private Problems() {
    }

    public static String describe(Throwable failure) {
        Throwable e = failure;
        while ((e instanceof CompletionException || e instanceof ExecutionException || e instanceof java.io.UncheckedIOException)
                && e.getCause() != null) {
            e = e.getCause();
        }
        if (e instanceof HttpConnectTimeoutException) {
            return "no connection within the timeout";
        }
        if (e instanceof HttpTimeoutException) {
            return "no answer within the timeout";
        }
        if (e instanceof ConnectException) {
            return "connection refused";
        }
        if (e instanceof UnknownHostException) {
            return "unknown host" + (e.getMessage() == null ? "" : " " + e.getMessage());
        }
        if (e instanceof NoSuchFileException missing) {
            return missing.getFile() + ": no such file or directory";
        }
        if (e instanceof AccessDeniedException denied) {
            return denied.getFile() + ": permission denied";
        }
        if (e instanceof NotDirectoryException notDirectory) {
            return notDirectory.getFile() + ": not a directory";
        }
        if (e instanceof FileSystemException fs) {
            return fs.getFile() + ": " + (fs.getReason() == null ? "cannot be used" : fs.getReason());
        }
        if (e instanceof JsonProcessingException json) {
            return Json.describe(json);
        }
        if (e instanceof java.io.EOFException || (e instanceof java.io.IOException && e.getMessage() == null)) {
            return "the connection closed unexpectedly";
        }
        String message = e.getMessage();
        if (message == null || message.isBlank()) {
            return "an unexpected error (the daemon's log or -Dferry.log.level=DEBUG may say more)";
        }
        return message.lines().findFirst().orElse(message);
    }
}
