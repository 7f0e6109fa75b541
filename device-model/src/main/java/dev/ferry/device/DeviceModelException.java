package dev.ferry.device;

/**
 * A request the device model refuses, with a stable snake_case code (the API's error codes build on
 * it) and a human sentence.
 */
public class DeviceModelException extends RuntimeException {
    public static final String INVALID_CONFIG = "invalid_config";
    public static final String NDMA_REQUIRED = "ndma_required";
    public static final String DUPLICATE_ID = "duplicate_id";
    public static final String NOT_FOUND = "not_found";
    public static final String NOT_IDLE = "vm_running";
    public static final String TIMEOUT = "timeout";

    private final String code;

    public DeviceModelException(String code, String message) {
        super(message);
        this.code = code;
    }

    public String code() {
        return code;
    }

    public static DeviceModelException invalid(String message) {
        return new DeviceModelException(INVALID_CONFIG, message);
    }
}
