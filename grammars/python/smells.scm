; Python code-smell queries for refactor-ai (grammar: tree-sitter-python 0.25.0).
;
; Contract (read by the engine, see grammars/README.md):
;   - every pattern captures exactly one node as @smell; the finding spans that node's lines;
;   - every pattern sets id (kebab-case, reported as python/<id>), message (one line; {capture}
;     is replaced by that capture's text, truncated) and help (how to refactor);
;   - optional: severity (error | warning | note, default warning) and skip-in-tests ("true":
;     the engine drops matches in test files: test_*.py, *_test.py, conftest.py, or under tests/);
;   - several patterns may share an id (alternatives); each carries the id, the first also the
;     message, help and severity; a later one may give its own message;
;   - only built-in predicates: #eq? #not-eq? #match? #not-match? #any-of? #not-any-of?.
;   - no pattern may capture a comment as @smell (fixture markers are comments).
;
; Rules:
;   mutable-default-argument  parameter default is a list/dict/set literal or list()/dict()/set()-like call
;   bare-except               `except:` with no exception type
;   swallowed-exception       `except Exception:` / `except BaseException:` whose body is only `pass`
;   range-len                 `for i in range(len(xs))` whose body starts with `x = xs[i]`, or a comprehension yielding `xs[i]`
;   none-comparison           `x == None` / `x != None`
;   bool-comparison           `x == True` / `x != False`
;   type-comparison           `type(x) == T` / `type(x) != T`
;   negated-comparison        `not x in y` / `not x is y`
;   is-literal                `x is "str"` / `x is 1` (identity comparison with a literal)
;   dict-keys-membership      `k in d.keys()`
;   len-comparison            `len(x) == 0`, `len(x) > 0`, `len(x) != 0` (and mirrored)
;   needless-bool             `if c: return True else: return False` (or `if c: return True` + `return False`)
;   string-concat-in-loop     `s = ""` then `s += ...` directly inside a for/while body
;   assert-tuple              `assert (cond, "msg")`: a non-empty tuple is always true
;   return-in-finally         `return` directly inside `finally:` swallows the in-flight exception
;   raise-not-implemented     `raise NotImplemented` (a constant, not an exception)
;   merge-isinstance          `isinstance(x, A) or isinstance(x, B)`
;   getattr-constant          `getattr(x, "name")` / `setattr(x, "name", v)` with a constant attribute name (skip-in-tests)
;   dict-get-none             `d.get(k, None)`: None is already the default
;   unnecessary-lambda        `lambda x: f(x)` passed as an argument

; ---------------------------------------------------------------------------------------------
; mutable-default-argument (ruff B006, pylint W0102 dangerous-default-value)
([(default_parameter
    name: (_) @param
    value: [(list) (dictionary) (set) (list_comprehension) (dictionary_comprehension) (set_comprehension)] @default)
  (typed_default_parameter
    name: (_) @param
    value: [(list) (dictionary) (set) (list_comprehension) (dictionary_comprehension) (set_comprehension)] @default)] @smell
 (#set! id "mutable-default-argument")
 (#set! message "parameter `{param}` has a mutable default `{default}` that is shared between calls")
 (#set! help "Default values are evaluated once, at definition time, so mutations leak into later calls. Default to None and create the value inside: `def f(xs=None):` then `if xs is None: xs = []`."))
([(default_parameter
    name: (_) @param
    value: (call function: (identifier) @fn) @default)
  (typed_default_parameter
    name: (_) @param
    value: (call function: (identifier) @fn) @default)] @smell
 (#any-of? @fn "list" "dict" "set" "bytearray" "defaultdict" "OrderedDict" "deque" "Counter")
 (#set! id "mutable-default-argument"))

; ---------------------------------------------------------------------------------------------
; bare-except (ruff/pycodestyle E722, pylint W0702 bare-except)
((except_clause !value) @smell
 (#set! id "bare-except")
 (#set! message "bare `except:` also catches KeyboardInterrupt, SystemExit and GeneratorExit")
 (#set! help "Catch the exceptions you expect, e.g. `except (ValueError, KeyError):`; if you really mean everything, write `except BaseException:` (and re-raise) or use `finally:` for cleanup."))

; ---------------------------------------------------------------------------------------------
; swallowed-exception (ruff S110 try-except-pass + BLE001, pylint W0718 broad-exception-caught)
; Only broad handlers: `except KeyError: pass` is an ordinary EAFP idiom and is not reported.
; Nor is a handler with a comment in its body: the comment records a deliberate decision.
((except_clause
   value: (_) @exc
   (block . (pass_statement)) @body) @smell
 (#match? @exc "^(Exception|BaseException)(\\s+as\\s+[A-Za-z_][A-Za-z0-9_]*)?$")
 (#match? @body "^pass(\\s*#[^\\n]*)*\\s*$")
 (#not-match? @smell "\\n[^\\n]*#")
 (#set! id "swallowed-exception")
 (#set! message "`except {exc}: pass` silently swallows every error")
 (#set! help "Catch only the exceptions you expect, or at least log them: `except OSError: pass` can become `with contextlib.suppress(OSError): ...`; `except Exception: logger.exception(\"...\")` keeps the traceback."))

; ---------------------------------------------------------------------------------------------
; range-len (pylint C0200 consider-using-enumerate, ruff FURB/SIM style)
; Narrowed for precision: the loop body must start with `item = xs[i]`, or the comprehension must
; yield `xs[i]` (or `xs[i].attr`) for the same `xs` and `i`.
((for_statement
   left: (identifier) @index
   right: (call
     function: (identifier) @range
     arguments: (argument_list . (call function: (identifier) @len arguments: (argument_list . (_) @seq .)) .))
   body: (block . (expression_statement
     (assignment
       left: [(identifier) (pattern_list) (tuple_pattern)]
       right: (subscript value: (_) @seq2 subscript: (identifier) @index2))))) @smell
 (#eq? @range "range") (#eq? @len "len")
 (#eq? @seq @seq2) (#eq? @index @index2)
 (#set! id "range-len")
 (#set! severity "note")
 (#set! message "`for {index} in range(len({seq}))` only to index `{seq}`")
 (#set! help "Iterate directly: `for item in xs:`, or `for i, item in enumerate(xs):` when the index is needed too."))
([(list_comprehension
    body: [(subscript value: (_) @seq2 subscript: (identifier) @index2)
           (attribute object: (subscript value: (_) @seq2 subscript: (identifier) @index2))]
    (for_in_clause
      left: (identifier) @index
      right: (call
        function: (identifier) @range
        arguments: (argument_list . (call function: (identifier) @len arguments: (argument_list . (_) @seq .)) .))))
  (generator_expression
    body: [(subscript value: (_) @seq2 subscript: (identifier) @index2)
           (attribute object: (subscript value: (_) @seq2 subscript: (identifier) @index2))]
    (for_in_clause
      left: (identifier) @index
      right: (call
        function: (identifier) @range
        arguments: (argument_list . (call function: (identifier) @len arguments: (argument_list . (_) @seq .)) .))))
  (set_comprehension
    body: [(subscript value: (_) @seq2 subscript: (identifier) @index2)
           (attribute object: (subscript value: (_) @seq2 subscript: (identifier) @index2))]
    (for_in_clause
      left: (identifier) @index
      right: (call
        function: (identifier) @range
        arguments: (argument_list . (call function: (identifier) @len arguments: (argument_list . (_) @seq .)) .))))] @smell
 (#eq? @range "range") (#eq? @len "len")
 (#eq? @seq @seq2) (#eq? @index @index2)
 (#set! id "range-len"))

; ---------------------------------------------------------------------------------------------
; none-comparison (ruff/pycodestyle E711, pylint C0121 singleton-comparison)
([(comparison_operator . (none) . operators: ["==" "!="] . (_) .)
  (comparison_operator . (_) . operators: ["==" "!="] . (none) .)] @smell
 (#set! id "none-comparison")
 (#set! message "comparison to None with an equality operator: `{smell}`")
 (#set! help "None is a singleton and `==` can be overridden by `__eq__`: write `x is None` / `x is not None`."))

; ---------------------------------------------------------------------------------------------
; bool-comparison (ruff/pycodestyle E712, pylint C0121 singleton-comparison)
([(comparison_operator . [(true) (false)] . operators: ["==" "!="] . (_) .)
  (comparison_operator . (_) . operators: ["==" "!="] . [(true) (false)] .)] @smell
 (#set! id "bool-comparison")
 (#set! message "comparison to a bool literal: `{smell}`")
 (#set! help "Use the value's truthiness: `if flag:` / `if not flag:`; if you really need to tell True from other truthy values, use `flag is True`."))

; ---------------------------------------------------------------------------------------------
; type-comparison (ruff/pycodestyle E721, pylint C0123 unidiomatic-typecheck)
; `type(x) is T` is left alone: it is the right way to require an exact type.
([(comparison_operator
    . (call function: (identifier) @type arguments: (argument_list . (_) .))
    . operators: ["==" "!="]
    . (_) .)
  (comparison_operator
    . (_) @lhs
    . operators: ["==" "!="]
    . (call function: (identifier) @type arguments: (argument_list . (_) .)) .)] @smell
 (#eq? @type "type")
 (#not-match? @lhs "^type\\s*\\(")
 (#set! id "type-comparison")
 (#set! message "type compared with `==`: `{smell}`")
 (#set! help "Use `isinstance(x, T)`, which also accepts subclasses; if the exact type is required, compare identities: `type(x) is T`."))

; ---------------------------------------------------------------------------------------------
; negated-comparison (ruff/pycodestyle E713 not-in-test, E714 not-is-test)
((not_operator argument: (comparison_operator operators: ["in" "is"])) @smell
 (#set! id "negated-comparison")
 (#set! message "`{smell}` negates a membership/identity test")
 (#set! help "Use the dedicated operator: `x not in y` instead of `not x in y`, `x is not None` instead of `not x is None`."))

; ---------------------------------------------------------------------------------------------
; is-literal (pyflakes F632, pylint R0123 literal-comparison)
([(comparison_operator
    . (_)
    . operators: ["is" "is not"]
    . [(string) (concatenated_string) (integer) (float) (unary_operator argument: [(integer) (float)])] .)
  (comparison_operator
    . [(string) (concatenated_string) (integer) (float) (unary_operator argument: [(integer) (float)])]
    . operators: ["is" "is not"]
    . (_) .)] @smell
 (#set! severity "error")
 (#set! id "is-literal")
 (#set! message "identity comparison with a literal: `{smell}`")
 (#set! help "Whether two equal literals are the same object is an implementation detail (and a SyntaxWarning since Python 3.8): use `==` / `!=`."))

; ---------------------------------------------------------------------------------------------
; dict-keys-membership (ruff SIM118 in-dict-keys, pylint C0201 consider-iterating-dictionary)
((comparison_operator
   . (_)
   . operators: ["in" "not in"]
   . (call
     function: (attribute object: (_) @dict attribute: (identifier) @keys)
     arguments: (argument_list) @args) .) @smell
 (#eq? @keys "keys") (#eq? @args "()")
 (#set! id "dict-keys-membership")
 (#set! severity "note")
 (#set! message "membership test against `{dict}.keys()`")
 (#set! help "Test the mapping itself: `k in d` is O(1) and does not build a keys view. Before: `if k in d.keys():` After: `if k in d:`."))

; ---------------------------------------------------------------------------------------------
; len-comparison (pylint C1802 use-implicit-booleaness-not-len / C1805, ruff PLC1802)
([(comparison_operator
    . (call function: (identifier) @len arguments: (argument_list . (_) @seq .))
    . operators: ["==" "!=" ">"]
    . (integer) @zero .)
  (comparison_operator
    . (integer) @zero
    . operators: ["==" "!=" "<"]
    . (call function: (identifier) @len arguments: (argument_list . (_) @seq .)) .)] @smell
 (#eq? @len "len") (#eq? @zero "0")
 (#set! id "len-comparison")
 (#set! severity "note")
 (#set! message "emptiness test through len(): `{smell}`")
 (#set! help "Sequences and collections are falsy when empty: `if not xs:` instead of `if len(xs) == 0:`, `if xs:` instead of `if len(xs) > 0:` (use `bool(xs)` when a bool value is needed)."))

; ---------------------------------------------------------------------------------------------
; needless-bool (ruff SIM103 needless-bool, pylint R1703 simplifiable-if-statement)
((if_statement
   condition: (_) @cond
   consequence: (block . (return_statement [(true) (false)] @a) .)
   .
   alternative: (else_clause body: (block . (return_statement [(true) (false)] @b) .))) @smell
 (#not-eq? @a @b)
 (#set! id "needless-bool")
 (#set! severity "note")
 (#set! message "if/else only returns True or False on `{cond}`")
 (#set! help "Return the condition itself. Before: `if c: return True` / `else: return False`. After: `return c` (or `return bool(c)` / `return not c`)."))
((block
   (if_statement
     !alternative
     condition: (_) @cond
     consequence: (block . (return_statement [(true) (false)] @a) .)) @smell
   .
   (return_statement [(true) (false)] @b))
 (#not-eq? @a @b)
 (#set! id "needless-bool"))

; ---------------------------------------------------------------------------------------------
; string-concat-in-loop (pylint R1713 consider-using-join, ruff PERF-style)
; Only when the variable is initialised to a string literal earlier in the same block, so that
; the loop really accumulates one string (a variable reset each iteration is not reported).
((block
   (expression_statement (assignment left: (identifier) @init right: (string)))
   [(for_statement
      body: (block (expression_statement (augmented_assignment left: (identifier) @var operator: "+=") @smell)))
    (while_statement
      body: (block (expression_statement (augmented_assignment left: (identifier) @var operator: "+=") @smell)))])
 (#eq? @init @var)
 (#set! id "string-concat-in-loop")
 (#set! severity "note")
 (#set! message "string `{var}` is built with `+=` inside a loop")
 (#set! help "Repeated `+=` copies the string each time (quadratic in the worst case). Collect the pieces and join once: `parts = []`, `parts.append(x)` in the loop, then `s = \"\".join(parts)` (or `\"\".join(f(x) for x in xs)`)."))

; ---------------------------------------------------------------------------------------------
; assert-tuple (pyflakes F631, pylint W0199 assert-on-tuple)
((assert_statement . (tuple (_))) @smell
 (#set! severity "error")
 (#set! id "assert-tuple")
 (#set! message "assert on a non-empty tuple is always true")
 (#set! help "The parentheses make a tuple, which is truthy. Drop them: `assert cond, \"message\"`."))

; ---------------------------------------------------------------------------------------------
; return-in-finally (ruff B012 jump-statement-in-finally, pylint W0150 lost-exception)
((finally_clause (block (return_statement) @smell))
 (#set! severity "error")
 (#set! id "return-in-finally")
 (#set! message "`return` in `finally` silently discards any exception raised in the `try`")
 (#set! help "Move the return after the try statement (or into the try/else), and keep `finally:` for cleanup only."))

; ---------------------------------------------------------------------------------------------
; raise-not-implemented (pyflakes F901, pylint E0711 notimplemented-raised)
([(raise_statement . (identifier) @name)
  (raise_statement . (call function: (identifier) @name))] @smell
 (#eq? @name "NotImplemented")
 (#set! severity "error")
 (#set! id "raise-not-implemented")
 (#set! message "`raise NotImplemented` raises a TypeError: NotImplemented is not an exception")
 (#set! help "Raise the exception class: `raise NotImplementedError` (NotImplemented is the value binary dunder methods return)."))

; ---------------------------------------------------------------------------------------------
; merge-isinstance (ruff SIM101 duplicate-isinstance-call, pylint R1701 consider-merging-isinstance)
((boolean_operator
   left: (call function: (identifier) @f1 arguments: (argument_list . (_) @obj . (_) .))
   operator: "or"
   right: (call function: (identifier) @f2 arguments: (argument_list . (_) @obj2 . (_) .))) @smell
 (#eq? @f1 "isinstance") (#eq? @f2 "isinstance") (#eq? @obj @obj2)
 (#set! id "merge-isinstance")
 (#set! severity "note")
 (#set! message "two isinstance() calls on `{obj}` joined by `or`")
 (#set! help "isinstance accepts a tuple of types: `isinstance(x, (A, B))` instead of `isinstance(x, A) or isinstance(x, B)`."))

; ---------------------------------------------------------------------------------------------
; getattr-constant (ruff B009 getattr-with-constant / B010 setattr-with-constant)
; Not reported when the call is a whole expression statement (`getattr(obj, "x")` used only to
; trigger AttributeError), nor `setattr` as a lambda's body (an assignment cannot be one).
((call
   function: (identifier) @fn
   arguments: (argument_list . (_) @obj . (string) @name .)) @smell
 (#eq? @fn "getattr")
 (#match? @name "^[\"'][A-Za-z_][A-Za-z0-9_]*[\"']$")
 (#not-match? @name "^[\"']__")
 (#not-match? @name "^[\"'](False|None|True|and|as|assert|async|await|break|class|continue|def|del|elif|else|except|finally|for|from|global|if|import|in|is|lambda|nonlocal|not|or|pass|raise|return|try|while|with|yield)[\"']$")
 (#set! not-parent "expression_statement")
 (#set! skip-in-tests "true")
 (#set! id "getattr-constant")
 (#set! severity "note")
 (#set! message "`{smell}` uses a constant attribute name")
 (#set! help "Access the attribute directly: `obj.name` instead of `getattr(obj, \"name\")`, `obj.name = v` instead of `setattr(obj, \"name\", v)`. Keep getattr only with a default or a computed name."))
((call
   function: (identifier) @fn
   arguments: (argument_list . (_) @obj . (string) @name . (_) .)) @smell
 (#eq? @fn "setattr")
 (#set! not-parent "lambda")
 (#match? @name "^[\"'][A-Za-z_][A-Za-z0-9_]*[\"']$")
 (#not-match? @name "^[\"']__")
 (#not-match? @name "^[\"'](False|None|True|and|as|assert|async|await|break|class|continue|def|del|elif|else|except|finally|for|from|global|if|import|in|is|lambda|nonlocal|not|or|pass|raise|return|try|while|with|yield)[\"']$")
 (#set! skip-in-tests "true")
 (#set! id "getattr-constant"))

; ---------------------------------------------------------------------------------------------
; dict-get-none (ruff SIM910 dict-get-with-none-default)
((call
   function: (attribute attribute: (identifier) @get)
   arguments: (argument_list . (_) @key . (none) .)) @smell
 (#eq? @get "get")
 (#set! id "dict-get-none")
 (#set! severity "note")
 (#set! message "`.get({key}, None)`: None is already the default")
 (#set! help "Drop the redundant default: `d.get(key)` instead of `d.get(key, None)`."))

; ---------------------------------------------------------------------------------------------
; unnecessary-lambda (pylint W0108 unnecessary-lambda, ruff PLW0108)
; Only a one-parameter lambda passed as an argument whose body calls a plain name or a dotted
; name (at most two levels) that does not involve the parameter.
((lambda
   parameters: (lambda_parameters . (identifier) @param .)
   body: (call
     function: (identifier) @callee
     arguments: (argument_list . (identifier) @arg .))) @smell
 (#set! parent "argument_list,keyword_argument")
 (#eq? @param @arg) (#not-eq? @callee @param)
 (#set! id "unnecessary-lambda")
 (#set! severity "note")
 (#set! message "`{smell}` only forwards its argument to `{callee}`")
 (#set! help "Pass the callable itself: `key=str.lower` instead of `key=lambda s: str.lower(s)`, `map(int, xs)` instead of `map(lambda x: int(x), xs)`."))
((lambda
   parameters: (lambda_parameters . (identifier) @param .)
   body: (call
     function: (attribute object: [(identifier) @base (attribute object: (identifier) @base)]) @callee
     arguments: (argument_list . (identifier) @arg .))) @smell
 (#set! parent "argument_list,keyword_argument")
 (#eq? @param @arg) (#not-eq? @base @param)
 (#set! id "unnecessary-lambda"))
