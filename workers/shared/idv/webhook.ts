/**
 * Persona's webhook body (JSON:API): an event whose payload is the inquiry it is about. The same
 * schema validates the body in handleEvent and, converted to JSON Schema, is the request model of
 * the IDV REST API's webhook route. Every object is loose, so a field Persona adds, at any level,
 * gets through: converted, any other object says `additionalProperties: false`, and API Gateway
 * would refuse the webhook before handleEvent saw it.
 */
import { z } from "zod";

export const personaWebhookSchema = () =>
  z
    .object({
      data: z
        .object({
          type: z.literal("event"),
          id: z.string().min(1),
          attributes: z
            .object({
              /** e.g. inquiry.completed */
              name: z.string().min(1),
              "created-at": z.string().min(1),
              payload: z
                .object({
                  data: z
                    .object({
                      type: z.literal("inquiry"),
                      id: z.string().min(1),
                      attributes: z
                        .object({
                          status: z.string().min(1),
                          "reference-id": z.string().min(1).nullable(),
                        })
                        .loose(),
                    })
                    .loose(),
                })
                .loose(),
            })
            .loose(),
        })
        .loose(),
    })
    .loose();

export type PersonaWebhook = z.infer<ReturnType<typeof personaWebhookSchema>>;
