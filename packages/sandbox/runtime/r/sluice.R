# Sluice helpers for R: structured progress and rich results, sent to the server on the
# events channel (the fd named by SLUICE_EVENTS_FD), one JSON object per line.
#
#   sluice_progress(40, "Loading")             progress(40, "Loading") for short
#   sluice_progress(message = "Fetching", data = list(rows = 10))
#   sluice_result(summary(x))                  text/plain as print() shows it
#   sluice_result(list(a = 1, b = "x"))        application/json too, for lists and vectors
#   sluice_result("<b>hi</b>", mime = "text/html")
#   sluice_result(file = "plot.png")           image/png (base64); also jpeg, gif, svg, html…
#
# Rscript reads this file as the user profile (R_PROFILE_USER) before the program. The
# helpers live in an attached environment named "sluice", so ls() stays clean.
#
# Sync protocol: when the events fd is a socket (as Sluice gives it), the line carries
# "sync":true and a call returns only once the server answers one byte (0x06) on that fd, sent
# when the event has its place in the log after all output written before it (R writes its
# console output to fds 1 and 2 at once; stdout and stderr are flushed first anyway). End of
# file or an error there (the server is gone) ends the wait. On a pipe or a file the line has
# no "sync" and nothing waits.

local({
  # The internals live in this local environment; only the helpers are attached.
  env <- environment()

  # Escapes one string for JSON: quote, backslash and control characters; the rest is UTF-8.
  env$json_string <- function(s) {
    s <- enc2utf8(as.character(s))
    s <- gsub("\\", "\\\\", s, fixed = TRUE)
    s <- gsub("\"", "\\\"", s, fixed = TRUE)
    s <- gsub("\n", "\\n", s, fixed = TRUE)
    s <- gsub("\r", "\\r", s, fixed = TRUE)
    s <- gsub("\t", "\\t", s, fixed = TRUE)
    ctl <- "[\001-\010\013\014\016-\037\177]"
    if (any(grepl(ctl, s, useBytes = TRUE))) {
      s <- vapply(s, function(one) {
        chars <- strsplit(one, "", useBytes = TRUE)[[1]]
        bad <- grepl(ctl, chars, useBytes = TRUE)
        chars[bad] <- sprintf("\\u%04x", vapply(chars[bad], function(ch) as.integer(charToRaw(ch)), 0L))
        paste(chars, collapse = "")
      }, "", USE.NAMES = FALSE)
    }
    paste0("\"", s, "\"")
  }

  # One R value as JSON: NULL and NA are null, length-1 atomic vectors are scalars, longer
  # ones arrays; named lists are objects, unnamed ones arrays; a data frame is an array of
  # row objects; a matrix an array of rows; factors and dates their text.
  env$to_json <- function(x) {
    if (is.null(x)) return("null")
    if (is.data.frame(x)) {
      rows <- lapply(seq_len(nrow(x)), function(i) as.list(x[i, , drop = FALSE]))
      return(paste0("[", paste(vapply(rows, env$to_json, ""), collapse = ","), "]"))
    }
    if (is.matrix(x) && is.atomic(x)) {
      rows <- lapply(seq_len(nrow(x)), function(i) unname(x[i, ]))
      return(paste0("[", paste(vapply(rows, function(r) env$to_json(as.list(r)), ""), collapse = ","), "]"))
    }
    if (is.list(x)) {
      items <- vapply(x, env$to_json, "", USE.NAMES = FALSE)
      keys <- names(x)
      if (!is.null(keys) && length(x) > 0) {
        keys[is.na(keys) | keys == ""] <- as.character(which(is.na(keys) | keys == ""))
        return(paste0("{", paste0(env$json_string(keys), ":", items, collapse = ","), "}"))
      }
      return(paste0("[", paste(items, collapse = ","), "]"))
    }
    if (is.factor(x) || inherits(x, "Date") || inherits(x, "POSIXt")) x <- as.character(x)
    if (!is.atomic(x)) return(env$json_string(paste(utils::capture.output(print(x)), collapse = "\n")))
    vals <- if (is.logical(x)) {
      ifelse(x, "true", "false")
    } else if (is.numeric(x)) {
      out <- if (is.integer(x)) as.character(x) else sprintf("%.15g", x)
      out[!is.finite(x)] <- "null"
      out
    } else if (is.complex(x)) {
      env$json_string(as.character(x))
    } else {
      env$json_string(x)
    }
    vals[is.na(x)] <- "null"
    if (length(x) == 1 && is.null(names(x))) return(vals)
    if (!is.null(names(x))) return(env$to_json(as.list(x)))
    paste0("[", paste(vals, collapse = ","), "]")
  }

  env$base64 <- function(bytes) {
    alphabet <- strsplit("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", "")[[1]]
    n <- length(bytes)
    if (n == 0) return("")
    pad <- (3 - n %% 3) %% 3
    b <- c(as.integer(bytes), integer(pad))
    m <- matrix(b, nrow = 3)
    v <- m[1, ] * 65536 + m[2, ] * 256 + m[3, ]
    idx <- rbind(v %/% 262144, (v %/% 4096) %% 64, (v %/% 64) %% 64, v %% 64)
    chars <- alphabet[as.vector(idx) + 1]
    if (pad > 0) chars[(length(chars) - pad + 1):length(chars)] <- "="
    paste(chars, collapse = "")
  }

  env$con <- NULL
  env$reopen_failed <- FALSE

  # Writes the event line on the inherited fd and waits for the acknowledgement: the line
  # arrives on stdin (any length), "sync" is added on a socket; write errors exit 1. EINTR and
  # EAGAIN are retried; Errno is loaded only then (%! would load it in every call).
  env$sync_writer <- paste(
    "my $fd = shift; binmode STDIN; local $/; my $line = <STDIN>;",
    "open(my $c, \"+<&=\", $fd) or die \"sluice: cannot open the events channel (fd $fd): $!\\n\";",
    "my $sync = -S $c; $line =~ s/\\}\\n\\z/,\"sync\":true}\\n/ if $sync;",
    "sub transient { my $e = $! + 0; require Errno; $! = $e; $e == Errno::EINTR() || $e == Errno::EAGAIN() }",
    "for (my $o = 0; $o < length $line;) {",
    "  my $n = syswrite($c, $line, length($line) - $o, $o);",
    "  if (defined $n) { $o += $n; next }",
    "  die \"sluice: cannot write to the events channel (fd $fd): $!\\n\" if !transient(); select(undef, undef, undef, 0.001);",
    "}",
    "while ($sync) { last if defined sysread($c, my $ack, 1); last if !transient(); select(undef, undef, undef, 0.001) }"
  )

  # Writes one event line; output printed before it is flushed first so it arrives first.
  # A pipe is reopened as /dev/fd/N and written directly. A socket (what Sluice gives) cannot
  # be reopened (ENXIO), and R cannot read from an inherited fd to take the acknowledgement:
  # a perl (perl-base is in every sandbox) that inherits the fd writes the line and waits.
  # Outside Sluice (no SLUICE_EVENTS_FD) `outside()` runs instead, as in the Python helper.
  env$send <- function(json, outside) {
    fd <- Sys.getenv("SLUICE_EVENTS_FD")
    if (fd == "") {
      outside()
      return(invisible(FALSE))
    }
    if (!grepl("^[0-9]+$", fd)) stop("sluice: SLUICE_EVENTS_FD is not a file descriptor number: ", fd, call. = FALSE)
    flush(stdout())
    flush(stderr())
    line <- paste0(json, "\n")
    if (is.null(env$con) && !env$reopen_failed) {
      env$con <- tryCatch(suppressWarnings(file(paste0("/dev/fd/", fd), open = "wb")), error = function(e) NULL)
      env$reopen_failed <- is.null(env$con)
    }
    if (!is.null(env$con)) {
      writeBin(charToRaw(line), env$con)
      flush(env$con)
    } else {
      writer <- pipe(paste("exec /usr/bin/perl -e", shQuote(env$sync_writer), fd), open = "wb")
      writeBin(charToRaw(line), writer)
      status <- close(writer)
      if (!is.null(status) && status != 0) stop("sluice: cannot write to the events channel (fd ", fd, ")", call. = FALSE)
    }
    invisible(TRUE)
  }

  env$mime_of <- function(path) {
    ext <- tolower(sub(".*\\.", "", basename(path)))
    types <- c(png = "image/png", jpg = "image/jpeg", jpeg = "image/jpeg", gif = "image/gif",
               svg = "image/svg+xml", html = "text/html", htm = "text/html", md = "text/markdown",
               json = "application/json", txt = "text/plain", csv = "text/csv", pdf = "application/pdf")
    if (ext %in% names(types)) types[[ext]] else stop("sluice_result: cannot tell the MIME type of ", path, "; pass mime = \"type/subtype\"", call. = FALSE)
  }

  # sluice_progress(percent, message, data): every argument optional; a lone string is the message.
  env$sluice_progress <- function(percent = NULL, message = NULL, data = NULL) {
    if (is.character(percent) && is.null(message)) {
      message <- percent
      percent <- NULL
    }
    fields <- c("\"type\":\"progress\"")
    if (!is.null(percent)) {
      if (!is.numeric(percent) || length(percent) != 1 || !is.finite(percent)) stop("sluice_progress: percent must be one number between 0 and 100", call. = FALSE)
      fields <- c(fields, paste0("\"percent\":", sprintf("%.15g", percent)))
    }
    if (!is.null(message)) fields <- c(fields, paste0("\"message\":", env$json_string(paste(message, collapse = " "))))
    if (!is.null(data)) fields <- c(fields, paste0("\"data\":", env$to_json(data)))
    summary <- paste(c(if (!is.null(percent)) paste0(format(percent), "%"), message), collapse = " ")
    env$send(paste0("{", paste(fields, collapse = ","), "}"), function() cat("[progress] ", summary, "\n", sep = "", file = stderr()))
  }

  # sluice_result(value, mime, file): one rich result. Without mime, text/plain is what print()
  # shows, plus application/json for lists, data frames and vectors longer than one. NULL
  # sends nothing.
  env$sluice_result <- function(value = NULL, mime = NULL, file = NULL) {
    if (is.null(value) && is.null(file)) return(invisible(FALSE))
    bundle <- list()
    plain <- NULL
    if (!is.null(file)) {
      type <- if (is.null(mime)) env$mime_of(file) else mime
      bytes <- readBin(file, "raw", n = file.info(file)$size)
      bundle[[type]] <- if (startsWith(type, "text/") || type == "image/svg+xml") {
        env$json_string(rawToChar(bytes))
      } else if (type == "application/json" || endsWith(type, "+json")) {
        gsub("[\r\n]", " ", rawToChar(bytes))
      } else {
        paste0("\"", env$base64(bytes), "\"")
      }
    } else if (!is.null(mime)) {
      bundle[[mime]] <- if (is.raw(value)) {
        paste0("\"", env$base64(value), "\"")
      } else if (mime == "application/json" || endsWith(mime, "+json")) {
        env$to_json(value)
      } else {
        env$json_string(paste(value, collapse = "\n"))
      }
    } else {
      text <- if (is.character(value) && length(value) == 1 && is.null(names(value))) value else paste(utils::capture.output(print(value)), collapse = "\n")
      bundle[["text/plain"]] <- env$json_string(text)
      plain <- text
      if (is.list(value) || (is.atomic(value) && length(value) > 1)) bundle[["application/json"]] <- env$to_json(value)
    }
    data <- paste0("{", paste0(env$json_string(names(bundle)), ":", unlist(bundle), collapse = ","), "}")
    outside <- function() {
      if (is.null(plain)) cat("[result: ", paste(names(bundle), collapse = ", "), "]\n", sep = "") else cat(plain, "\n", sep = "")
    }
    env$send(paste0("{\"type\":\"result\",\"data\":", data, "}"), outside)
  }

  public <- new.env()
  public$sluice_progress <- env$sluice_progress
  public$sluice_result <- env$sluice_result
  public$progress <- env$sluice_progress
  public$result <- env$sluice_result
  attach(public, name = "sluice", warn.conflicts = FALSE)
})
