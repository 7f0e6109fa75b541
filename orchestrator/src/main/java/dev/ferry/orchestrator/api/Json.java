package dev.ferry.orchestrator.api;

import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.type.LogicalType;
import java.io.IOException;
import java.util.stream.Collectors;

/**
 * The daemon's one JSON configuration, strict: unknown fields, trailing tokens, duplicate keys,
 * floats for integers and strings for numbers or booleans are all errors.
 */
public final class Json {
    private static final ObjectMapper MAPPER = strict(new ObjectMapper());

    private Json() {
    }

    /** The shared mapper. */
    public static ObjectMapper mapper() {
        return MAPPER;
    }

    /** Applies the strict settings to a mapper (JSON or YAML). */
    public static ObjectMapper strict(ObjectMapper mapper) {
        mapper.enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
        mapper.enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
        mapper.enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);
        mapper.enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY);
        mapper.disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT);
        mapper.disable(SerializationFeature.FAIL_ON_EMPTY_BEANS);
        mapper.getFactory().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION.mappedFeature());
        for (LogicalType type : new LogicalType[] {LogicalType.Integer, LogicalType.Float, LogicalType.Boolean}) {
            mapper.coercionConfigFor(type).setCoercion(CoercionInputShape.String, CoercionAction.Fail);
            mapper.coercionConfigFor(type).setCoercion(CoercionInputShape.EmptyString, CoercionAction.Fail);
        }
        mapper.coercionConfigFor(LogicalType.Boolean).setCoercion(CoercionInputShape.Integer, CoercionAction.Fail);
        mapper.coercionConfigFor(LogicalType.Textual).setCoercion(CoercionInputShape.Integer, CoercionAction.Fail);
        mapper.coercionConfigFor(LogicalType.Textual).setCoercion(CoercionInputShape.Float, CoercionAction.Fail);
        mapper.coercionConfigFor(LogicalType.Textual).setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail);
        return mapper;
    }

    /** A human sentence for a JSON problem, naming the field where there is one. */
    public static String describe(IOException e) {
        if (e instanceof UnrecognizedPropertyException unknown) {
            return "unknown field '" + unknown.getPropertyName() + "'" + at(unknown);
        }
        if (e instanceof InvalidFormatException format) {
            return "wrong value " + format.getValue() + at(format);
        }
        if (e instanceof MismatchedInputException mismatch) {
            String target = mismatch.getTargetType() == null ? "value" : mismatch.getTargetType().getSimpleName();
            return "expected " + article(target) + at(mismatch);
        }
        if (e instanceof JsonParseException parse) {
            // Jackson's own message names its source and stream features: only what was wrong and where.
            String what = parse.getOriginalMessage();
            int detail = what.indexOf(": expected");
            com.fasterxml.jackson.core.JsonLocation where = parse.getLocation();
            return "malformed JSON: " + (detail > 0 ? what.substring(0, detail) : what)
                    + (where == null ? "" : " at line " + where.getLineNr() + ", column " + where.getColumnNr());
        }
        if (e instanceof JsonProcessingException processing) {
            return processing.getOriginalMessage();
        }
        return e.getMessage();
    }

    /** The JSON path of the field a problem is at, like {@code devices[1].kind}, or empty. */
    public static String fieldOf(MismatchedInputException e) {
        return e.getPath().stream()
                .map(ref -> ref.getFieldName() != null ? ref.getFieldName() : "[" + ref.getIndex() + "]")
                .collect(Collectors.joining(".")).replace(".[", "[");
    }

    private static String at(MismatchedInputException e) {
        String field = fieldOf(e);
        return field.isEmpty() ? "" : " at '" + field + "'";
    }

    private static String article(String type) {
        return switch (type) {
            case "Long", "Integer", "long", "int" -> "integer";
            case "Boolean", "boolean" -> "boolean";
            case "String" -> "string";
            default -> type.toLowerCase(java.util.Locale.ROOT).startsWith("list") ? "array" : type;
        };
    }
}
