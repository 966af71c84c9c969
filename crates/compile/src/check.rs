//! The policy's checks of one parsed module: globals it may not reach, dynamic `import()`,
//! `import x = require(…)`, JSX where none is allowed, and what the entry default-exports.

use oxc::ast::ast::{
    ComputedMemberExpression, ExportDefaultDeclarationKind, Expression, IdentifierReference, ImportExpression,
    JSXElement, JSXFragment, Program, Statement, StaticMemberExpression, TSImportEqualsDeclaration, TSModuleReference,
    TSType, UnaryExpression, UnaryOperator,
};
use oxc::ast_visit::{Visit, walk};
use oxc::semantic::Scoping;
use oxc::span::{GetSpan, Span};

use crate::policy::Policy;

/// A problem found by the checks: its byte offset and message.
pub(crate) type Finding = (u32, String);

/// Every finding of the policy's checks in `program` (analysed into `scoping`).
pub(crate) fn check(program: &Program<'_>, scoping: &Scoping, policy: &Policy) -> Vec<Finding> {
    let mut checker = Checker { scoping, policy, findings: Vec::new(), reported_jsx: false };
    checker.visit_program(program);
    checker.findings
}

struct Checker<'s> {
    scoping: &'s Scoping,
    policy: &'s Policy,
    findings: Vec<Finding>,
    /// JSX is reported once per file.
    reported_jsx: bool,
}

impl Checker<'_> {
    /// Whether `ident` names a global (bound nowhere in the module) used as a value.
    fn is_global(&self, ident: &IdentifierReference<'_>) -> bool {
        ident.reference_id.get().is_none_or(|id| {
            let reference = self.scoping.get_reference(id);
            reference.symbol_id().is_none() && !reference.flags().is_type_only()
        })
    }

    /// The global object `expression` names (`window`, …), if it is one.
    fn global_object<'e>(&self, expression: &'e Expression<'_>) -> Option<&'e IdentifierReference<'e>> {
        match expression {
            Expression::Identifier(ident) if self.policy.is_global_object(&ident.name) && self.is_global(ident) => {
                Some(ident)
            }
            _ => None,
        }
    }

    fn report(&mut self, span: Span, message: String) {
        self.findings.push((span.start, message));
    }

    fn jsx(&mut self, span: Span) {
        if self.policy.jsx.is_none() && !self.reported_jsx {
            self.reported_jsx = true;
            self.report(span, "JSX is not supported here".to_owned());
        }
    }
}

impl<'a> Visit<'a> for Checker<'_> {
    fn visit_identifier_reference(&mut self, ident: &IdentifierReference<'a>) {
        if !self.is_global(ident) {
            return;
        }
        if self.policy.is_forbidden(&ident.name) {
            self.report(ident.span, format!("`{}` is not allowed: the app may not use it", ident.name));
        } else if self.policy.is_global_object(&ident.name) {
            self.report(ident.span, format!("`{}` may only be used as `{0}.name` or in `typeof {0}`", ident.name));
        }
    }

    fn visit_static_member_expression(&mut self, member: &StaticMemberExpression<'a>) {
        if let Some(object) = self.global_object(&member.object) {
            let property = &member.property.name;
            if self.policy.is_forbidden(property) || self.policy.is_global_object(property) {
                self.report(
                    member.span,
                    format!("`{}.{property}` is not allowed: the app may not use it", object.name),
                );
            }
            return;
        }
        walk::walk_static_member_expression(self, member);
    }

    fn visit_computed_member_expression(&mut self, member: &ComputedMemberExpression<'a>) {
        if let Some(object) = self.global_object(&member.object) {
            match &member.expression {
                Expression::StringLiteral(key) if !self.policy.is_forbidden(&key.value) => {}
                _ => self.report(
                    member.span,
                    format!("`{}[…]` is not allowed: name the property, as in `{0}.innerWidth`", object.name),
                ),
            }
            self.visit_expression(&member.expression);
            return;
        }
        walk::walk_computed_member_expression(self, member);
    }

    fn visit_unary_expression(&mut self, unary: &UnaryExpression<'a>) {
        if unary.operator == UnaryOperator::Typeof
            && let Expression::Identifier(ident) = &unary.argument
            && self.policy.is_global_object(&ident.name)
        {
            return;
        }
        walk::walk_unary_expression(self, unary);
    }

    fn visit_import_expression(&mut self, import: &ImportExpression<'a>) {
        if !self.policy.dynamic_import {
            self.report(import.span, "dynamic import() is not allowed: import modules statically".to_owned());
        }
        walk::walk_import_expression(self, import);
    }

    fn visit_ts_import_equals_declaration(&mut self, decl: &TSImportEqualsDeclaration<'a>) {
        if let TSModuleReference::ExternalModuleReference(_) = &decl.module_reference {
            self.report(decl.span, "`import … = require(…)` is not allowed: use `import … from`".to_owned());
        }
        walk::walk_ts_import_equals_declaration(self, decl);
    }

    /// Types never run.
    fn visit_ts_type(&mut self, _: &TSType<'a>) {}

    fn visit_jsx_element(&mut self, element: &JSXElement<'a>) {
        self.jsx(element.span);
        walk::walk_jsx_element(self, element);
    }

    fn visit_jsx_fragment(&mut self, fragment: &JSXFragment<'a>) {
        self.jsx(fragment.span);
        walk::walk_jsx_fragment(self, fragment);
    }
}

/// Whether the module default-exports something that can be a component; the finding
/// says what is wrong when not.
pub(crate) fn default_export_component(program: &Program<'_>, path: &str) -> Option<Finding> {
    for statement in &program.body {
        match statement {
            Statement::ExportDefaultDeclaration(export) => {
                return match &export.declaration {
                    ExportDefaultDeclarationKind::FunctionDeclaration(_)
                    | ExportDefaultDeclarationKind::ClassDeclaration(_) => None,
                    ExportDefaultDeclarationKind::TSInterfaceDeclaration(_) => {
                        Some((export.span.start, format!("{path} default-exports a type, not a React component")))
                    }
                    kind => {
                        let expression = kind.to_expression().without_parentheses().get_inner_expression();
                        (!can_be_component(expression)).then(|| {
                            (
                                expression.span().start,
                                format!(
                                    "{path} must default-export a React component (a function or class), not {}",
                                    describe(expression)
                                ),
                            )
                        })
                    }
                };
            }
            Statement::ExportNamedDeclaration(export)
                if export.specifiers.iter().any(|s| s.exported.name() == "default") =>
            {
                return None;
            }
            Statement::ExportFromDeclaration(export)
                if export.specifiers.iter().any(|s| s.exported.name() == "default") =>
            {
                return None;
            }
            _ => {}
        }
    }
    Some((0, format!("{path} has no default export: it must `export default` a React component")))
}

fn can_be_component(expression: &Expression<'_>) -> bool {
    matches!(
        expression,
        Expression::Identifier(_)
            | Expression::ArrowFunctionExpression(_)
            | Expression::FunctionExpression(_)
            | Expression::ClassExpression(_)
            | Expression::CallExpression(_)
            | Expression::StaticMemberExpression(_)
            | Expression::ComputedMemberExpression(_)
            | Expression::JSXElement(_)
            | Expression::JSXFragment(_)
            | Expression::ConditionalExpression(_)
            | Expression::LogicalExpression(_)
    )
}

fn describe(expression: &Expression<'_>) -> &'static str {
    match expression {
        Expression::StringLiteral(_) | Expression::TemplateLiteral(_) => "a string",
        Expression::NumericLiteral(_) | Expression::BigIntLiteral(_) => "a number",
        Expression::BooleanLiteral(_) => "a boolean",
        Expression::NullLiteral(_) => "null",
        Expression::ObjectExpression(_) => "an object",
        Expression::ArrayExpression(_) => "an array",
        _ => "this expression",
    }
}
