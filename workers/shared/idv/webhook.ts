/**
 * Persona's webhook body (JSON:API): an event whose payload is the inquiry it is about. The same
 * schema validates the body in handleEvent and, converted to JSON Schema, is the request model of
 * the IDV REST API's webhook route. Every object is loose, so a field Persona adds, at any level,
 * gets through: converted, any other object says `additionalProperties: false`, and API Gateway
 * would refuse the webhook before handleEvent saw it.
 */
import { z } from "../zod";

export const personaWebhookSchema = () =>
  z.looseObject({
    data: z.looseObject({
      type: z.literal("event"),
      id: z.string().check(z.minLength(1)),
      attributes: z.looseObject({
        /** e.g. inquiry.completed */
        name: z.string().check(z.minLength(1)),
        "created-at": z.string().check(z.minLength(1)),
        payload: z.looseObject({
          data: z.looseObject({
            type: z.literal("inquiry"),
            id: z.string().check(z.minLength(1)),
            attributes: z.looseObject({
              status: z.string().check(z.minLength(1)),
              "reference-id": z.nullable(z.string().check(z.minLength(1))),
            }),
          }),
        }),
      }),
    }),
  });

export type PersonaWebhook = z.infer<ReturnType<typeof personaWebhookSchema>>;
